#!/usr/bin/env bash
# Install the course hub on one Debian or Ubuntu server, as root. Idempotent: run it again
# to add students or change a setting; it never touches an instructor's course folder once
# made, nor anything under the exchange but its course folder's owner.
#
#   git clone <this repository> /opt/regnorm
#   sudo /opt/regnorm/deploy/hub/install.sh --instructor ada --students bo,cy,dee
#
# The course's checkout (the folder two levels above this script) is the hub's environment:
# `make setup` makes its .venv (torch, the course, nbgrader, JupyterHub).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=$(cd "$here/../.." && pwd)
config_dir=/etc/regnorm-hub
state_dir=/var/lib/regnorm-hub
exchange=/srv/nbgrader/exchange
course_id=regnorm
course_dir=regnorm
bind_url=http://127.0.0.1:8000
instructors=()
students=()
create_users=0
system_packages=1
systemd=1
tljh=0

usage() {
    cat <<EOT
usage: $0 --instructor NAME [--instructor NAME2] [--students A,B,C] [options]

  --instructor NAME      an instructor (their Unix user name); repeat for several
  --students A,B,C       the students' Unix user names (also --students-file FILE, one a line)
  --create-users         create the Unix users that do not exist yet (useradd -m)
  --course-id ID         nbgrader course id, the exchange's folder (default: $course_id)
  --exchange DIR         nbgrader's exchange root (default: $exchange)
  --course-dir NAME      the instructor's clone of the course, in their home (default: $course_dir)
  --bind-url URL         where the hub listens (default: $bind_url; put HTTPS in front)
  --config-dir DIR       where settings.json goes (default: $config_dir)
  --state-dir DIR        the hub's database and secrets (default: $state_dir)
  --no-system-packages   do not apt-get install (python3-venv, git, make, nodejs, npm)
  --no-systemd           do not install and start the regnorm-hub service
  --tljh                 The Littlest JupyterHub: add the course to its config instead
EOT
}

while [ $# -gt 0 ]; do
    case "$1" in
        --instructor) instructors+=("$2"); shift 2 ;;
        --students) IFS=, read -r -a more <<<"$2"; students+=("${more[@]}"); shift 2 ;;
        --students-file) mapfile -t more < <(grep -v '^\s*\(#\|$\)' "$2"); students+=("${more[@]}"); shift 2 ;;
        --create-users) create_users=1; shift ;;
        --course-id) course_id=$2; shift 2 ;;
        --exchange) exchange=$2; shift 2 ;;
        --course-dir) course_dir=$2; shift 2 ;;
        --bind-url) bind_url=$2; shift 2 ;;
        --config-dir) config_dir=$2; shift 2 ;;
        --state-dir) state_dir=$2; shift 2 ;;
        --no-system-packages) system_packages=0; shift ;;
        --no-systemd) systemd=0; shift ;;
        --tljh) tljh=1; systemd=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (sudo): the hub starts every user's server as that user"
[ ${#instructors[@]} -gt 0 ] || die "name at least one --instructor"
name_ok='^[a-z_][a-z0-9_.-]{0,31}$'
for u in "${instructors[@]}" "${students[@]}"; do
    [[ "$u" =~ $name_ok ]] || die "'$u' is not a Unix user name (lower-case letters, digits, . _ -)"
done
[[ "$course_id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "course id '$course_id': letters, digits, . _ - only"
[[ "$course_dir" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "course dir '$course_dir': a folder name in the home"

# 1. System packages.
if [ "$system_packages" = 1 ]; then
    say "system packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv git make nodejs npm >/dev/null
fi

# 2. Every user runs the course's Python: the checkout must be readable and its parents open.
d=$prefix
while [ "$d" != / ]; do
    perm=$(stat -c %A "$d")
    [ "${perm:9:1}" = x ] || [ "${perm:9:1}" = t ] ||
        die "$d is not open to other users (mode $perm): students cannot run the course from $prefix. Install the course under /opt (git clone ... /opt/regnorm) or chmod o+x $d"
    d=$(dirname "$d")
done

# 3. The environment: torch, the course, nbgrader, JupyterHub (make setup), and the proxy.
say "the course's environment in $prefix/.venv"
make -s -C "$prefix" setup
"$prefix/.venv/bin/python" -c "import jupyterhub" 2>/dev/null ||
    "$prefix/.venv/bin/python" -m pip install --quiet "jupyterhub>=5,<7"
chmod -R a+rX "$prefix"
chp="$prefix/.hub/node_modules/.bin/configurable-http-proxy"
if [ "$tljh" = 0 ] && [ ! -x "$chp" ]; then
    if command -v configurable-http-proxy >/dev/null; then
        say "configurable-http-proxy: $(command -v configurable-http-proxy)"
    else
        say "configurable-http-proxy (npm) in $prefix/.hub"
        npm install --silent --prefix "$prefix/.hub" configurable-http-proxy@5 >/dev/null
    fi
fi

# 4. Users and their homes: only their owner may enter (students' work and feedback).
for u in "${instructors[@]}" "${students[@]}"; do
    if ! id -u "$u" >/dev/null 2>&1; then
        [ "$create_users" = 1 ] || die "no Unix user '$u' (create it, or pass --create-users)"
        useradd -m -s /bin/bash "$u"
    fi
    home=$(getent passwd "$u" | cut -d: -f6)
    [ -d "$home" ] || { mkdir -p "$home"; chown "$u:" "$home"; }
    chmod 700 "$home"
done

# 5. The exchange: its root open to all (nbgrader's model, sticky like /tmp), the course's
#    folder made now and owned by the first instructor, so that no student can claim it first.
say "exchange $exchange/$course_id"
mkdir -p "$exchange"
chmod 1777 "$exchange"
owner=${instructors[0]}
mkdir -p "$exchange/$course_id"
chown "$owner:" "$exchange/$course_id"
chmod 755 "$exchange/$course_id"

# 6. Each instructor's own copy of the course (what nbgrader and the formgrader work in),
#    with a private classroom/ for the gradebook, submissions and feedback.
for u in "${instructors[@]}"; do
    home=$(getent passwd "$u" | cut -d: -f6)
    dest="$home/$course_dir"
    if [ ! -e "$dest" ]; then
        say "course folder $dest"
        mkdir -p "$dest"
        (cd "$prefix" && git -c safe.directory="$prefix" ls-files -z | tar --null -T - -cf -) | tar -C "$dest" -xf -
        chown -R "$u:" "$dest"
    fi
    install -d -o "$u" -g "$(id -gn "$u")" -m 700 "$dest/classroom"
done

# 7. Settings for the hub (read by deploy/hub/regnorm_hub.py).
mkdir -p "$config_dir"
"$prefix/.venv/bin/python" - "$config_dir/settings.json" <<PY
import json, sys
settings = {
    "course_id": "$course_id", "prefix": "$prefix", "exchange": "$exchange",
    "course_dir": "$course_dir", "bind_url": "$bind_url", "state_dir": "$state_dir",
    "instructors": "${instructors[*]}".split(), "students": "${students[*]}".split(),
}
with open(sys.argv[1], "w") as f:
    json.dump(settings, f, indent=2)
    f.write("\n")
PY
chmod 644 "$config_dir/settings.json"
install -d -m 700 "$state_dir"
say "settings: $config_dir/settings.json"

# 8. Sandboxes where the kernel restricts user namespaces (Ubuntu 23.10+'s AppArmor): a
#    profile that lets the course's bwrap create them (apparmor/install-bwrap-profile does
#    nothing where they are not restricted).
if [ -r /proc/sys/kernel/apparmor_restrict_unprivileged_userns ] &&
   [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns)" = 1 ]; then
    say "AppArmor profile for the course's bubblewrap"
    "$here/apparmor/install-bwrap-profile" ||
        echo "warning: no AppArmor profile installed: grading as the instructor cannot start its sandbox" \
             "(README, Security model: 'Grading as the instructor, not as root')" >&2
fi

# 9. The service.
if [ "$tljh" = 1 ]; then
    install -d /opt/tljh/config/jupyterhub_config.d
    install -m 644 "$here/tljh-regnorm.py" /opt/tljh/config/jupyterhub_config.d/regnorm.py
    say "TLJH: added regnorm.py to its config; run: tljh-config reload"
elif [ "$systemd" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    sed -e "s#@PREFIX@#$prefix#g" -e "s#@CONFIG_DIR@#$config_dir#g" -e "s#@STATE_DIR@#$state_dir#g" \
        "$here/jupyterhub.service" >/etc/systemd/system/regnorm-hub.service
    systemctl daemon-reload
    systemctl enable --now regnorm-hub.service
    systemctl restart regnorm-hub.service
    say "regnorm-hub.service running on $bind_url"
else
    say "start the hub: cd $state_dir && REGNORM_HUB_SETTINGS=$config_dir/settings.json $prefix/.venv/bin/jupyterhub -f $here/jupyterhub_config.py"
fi
