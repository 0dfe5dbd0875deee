#!/bin/sh
# say (sh): the integration tests' probe plugin, like say.c without the descriptor and id
# records. Records argv, env (the environment it was started with, from /proc/$$/environ:
# not the shell's own variables) and cwd as NUL-terminated "key=value" records in
# out/<basename of $0>.<n> (first free n), then prints the bytes of "$0.out" if it exists.
name=${0##*/}
n=1
set -C  # noclobber: "> file" fails if it exists. With true, not ':' (a special builtin: a
        # failed redirection would end the script).
until { true > "out/$name.$n"; } 2>/dev/null; do
  n=$((n + 1))
  [ "$n" -lt 100000 ] || { echo "say.sh: cannot create out/$name.N" >&2; exit 111; }
done
set +C
{
  printf 'argv=%s\0' "$0" "$@"
  sed -z 's/^/env=/' "/proc/$$/environ"
  printf 'cwd=%s\0' "$(pwd -P)"
} >> "out/$name.$n"
if [ -e "$0.out" ]; then
  cat "$0.out"
fi
exit 0
