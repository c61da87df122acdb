"""Offline stand-in for the get-pip script that ansible-test downloads.

ansible-test runs this file with the pip arguments it wants; we bootstrap pip from the
interpreter's bundled ensurepip and then install the requested packages from the
configured package index instead of downloading get-pip from the internet.
"""
import subprocess
import sys

UNSUPPORTED = ('--no-setuptools', '--no-wheel')


def main():
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
    args = [arg for arg in sys.argv[1:] if arg not in UNSUPPORTED]
    if args:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
