#!/bin/sh
# The addon's before_start hook: copies a file of the addon (found beside
# this script) to where the app's hook and function look for it.
set -eu
here=$(dirname "$0")
cat "$here/message.txt" > /run/addon-stamp
