# Sourced by the scripts in this folder: the few definitions they share.

# The PostgreSQL majors the version matrix runs besides the machine's own (Debian 12's 15);
# scripts/fetch-postgres pins each one's server binaries.
PG_MATRIX_OTHERS="14 16 17 18"

# One line about a step, on stderr (stdout stays for what a script returns), named after the
# script that says it.
say() { echo "${0##*/}: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Where the tools the tests use are installed (virtualenvs, cargo-deb, other PostgreSQL
# versions): outside the source tree, so a fresh clone reuses them. As root it must be
# reachable by the unprivileged user that runs the server, so not under /root.
tools_dir() {
  if [ "$(id -u)" -eq 0 ]; then
    echo /var/cache/cabinet-db
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/cabinet-db"
  fi
}
