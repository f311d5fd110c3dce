#!/bin/sh
# install-conf.sh MODE FILE DEST: how `make install` places one text file (FILE holds the
# text with this build's paths already filled in) as DEST, mode 0644.
#   replace    always overwrite: examples, man pages, the systemd unit (not edited in place)
#   config     a configuration file: an existing DEST that differs is the admin's and stays;
#              the shipped text is then written beside it as DEST.new (and said so)
#   uninstall  remove DEST (and DEST.new) when DEST is still the shipped text; else keep it
set -eu
mode="$1" file="$2" dest="$3"

put() {
    mkdir -p "$(dirname "$1")"
    cp "$file" "$1.tmp$$"
    chmod 0644 "$1.tmp$$"
    mv -f "$1.tmp$$" "$1"
}

case "$mode" in
replace)
    put "$dest"
    ;;
config)
    if [ -e "$dest" ] && ! cmp -s "$file" "$dest"; then
        put "$dest.new"
        echo "install-conf: kept $dest (changed locally); the shipped version is $dest.new"
    else
        put "$dest"
        rm -f "$dest.new"
    fi
    ;;
uninstall)
    if [ -e "$dest" ] && ! cmp -s "$file" "$dest"; then
        echo "install-conf: kept $dest (changed locally)"
    else
        rm -f "$dest"
    fi
    rm -f "$dest.new"
    ;;
*)
    echo "usage: install-conf.sh replace|config|uninstall FILE DEST" >&2
    exit 2
    ;;
esac
