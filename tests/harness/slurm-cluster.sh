#!/bin/sh
# tests/harness/slurm-cluster.sh — a real three-node Slurm cluster on this machine,
# for the slurm executor's tests and bench.
#
#   sh tests/harness/slurm-cluster.sh start DIR   start it; prints the lines to eval
#                                                 (SLURM_CONF=..., FLOW_SLURM_NODES=...)
#   sh tests/harness/slurm-cluster.sh stop DIR    stop it (idempotent)
#   sh tests/harness/slurm-cluster.sh check       can it run here? exit 0, or one
#                                                 reason line on stdout and exit 1
#   sh tests/harness/slurm-cluster.sh netns DIR N the network namespace of node nN
#
# Design. Everything lives under DIR: a munge daemon with its own key and socket
# (DIR/munge), a generated slurm.conf (DIR/slurm.conf, AuthInfo naming that
# socket), the controller's state and the nodes' spool directories, and the logs.
# The controller (slurmctld) listens on a Linux bridge's address in the host's
# network namespace; each node n1..n3 is a slurmd in a network namespace of its
# own, joined to the bridge by a veth pair, started with
# `nsenter --net=/run/netns/NAME slurmd -N nN` (`ip netns exec` remounts /sys and
# slurmd dies). The nodes share this machine's filesystem, as the nodes of a real
# cluster share one. Each node declares 8 CPUs (SlurmdParameters=config_overrides:
# the slots are declared, not real cores), cons_tres with CR_Core so one node runs
# several jobs, and the scheduler runs without its batch delays. The names of the
# bridge and namespaces and the subnet and ports come from a small id derived from
# DIR, so two clusters (say a plain and an ASan pass) can run side by side; the id
# is kept in DIR/cluster.env for `stop`. start waits until `sinfo` shows the three
# nodes idle (or fails with the logs' last lines); stop kills the daemons and every
# process left in the namespaces, and removes the namespaces and the bridge.
set -u

NODES="1 2 3"
CPUS=8

die() { echo "slurm-cluster: $*" >&2; exit 1; }

# one reason line when this machine cannot run the cluster
check() {
    [ "$(id -u)" = 0 ] || { echo "not root (network namespaces and slurmd need root)"; return 1; }
    for c in slurmctld slurmd sbatch squeue sinfo scancel scontrol munged mungekey ip nsenter; do
        command -v $c > /dev/null 2>&1 || { echo "no $c on PATH (sh .ci/deps.sh slurm)"; return 1; }
    done
    n=flow-probe-$$
    ip netns add $n 2> /dev/null || { echo "cannot create a network namespace (ip netns add)"; return 1; }
    nsenter --net=/run/netns/$n ip link set lo up 2> /dev/null ||
        { ip netns del $n 2> /dev/null; echo "cannot enter a network namespace (nsenter --net)"; return 1; }
    ip netns del $n 2> /dev/null
    ip link add flowprb$$ type bridge 2> /dev/null || { echo "cannot create a Linux bridge"; return 1; }
    ip link del flowprb$$ 2> /dev/null
    return 0
}

ids() {
    DIR=$1
    if [ -f "$DIR/cluster.env" ]; then
        . "$DIR/cluster.env"
    else
        ID=$(( $(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 200 + 20 ))
    fi
    BR=flowbr$ID
    NET=10.213.$ID
    PORT=$((17000 + ID * 2))
}
ns() { echo flow$ID-n$1; }

stop() {
    ids "$1"
    for n in $NODES; do
        if [ -e /run/netns/$(ns $n) ]; then
            pids=$(ip netns pids $(ns $n) 2> /dev/null)
            [ -n "$pids" ] && kill -9 $pids 2> /dev/null
        fi
    done
    for f in "$DIR"/run/slurmctld.pid "$DIR"/run/munged.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2> /dev/null
        rm -f "$f"
    done
    for n in $NODES; do
        ip netns del $(ns $n) 2> /dev/null
        ip link del vflow$ID-$n 2> /dev/null
    done
    ip link del $BR 2> /dev/null
    return 0
}

start() {
    DIR=$1
    mkdir -p "$DIR" || die "cannot create $DIR"
    DIR=$(cd "$DIR" && pwd)
    r=$(check) || die "$r"
    stop "$DIR"
    rm -f "$DIR/cluster.env"
    ids "$DIR"
    echo "ID=$ID" > "$DIR/cluster.env"
    mkdir -p "$DIR/munge" "$DIR/ctld" "$DIR/log" "$DIR/run" "$DIR/jobs" || die "mkdir under $DIR"
    for n in $NODES; do mkdir -p "$DIR/spool/n$n"; done
    chmod 700 "$DIR/munge"

    # munge: own key, own socket
    [ -f "$DIR/munge/munge.key" ] || mungekey --create --keyfile="$DIR/munge/munge.key" \
        > /dev/null 2>&1 || die "mungekey failed"
    chmod 600 "$DIR/munge/munge.key"
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munge.seed" > /dev/null 2> "$DIR/log/munged.err" ||
        die "munged did not start: $(tail -n1 "$DIR/log/munged.err")"

    # the bridge and the nodes' namespaces
    ip link add $BR type bridge || die "cannot create bridge $BR"
    ip addr add $NET.1/24 dev $BR && ip link set $BR up || die "cannot bring $BR up"
    NODELINES=
    for n in $NODES; do
        ip netns add $(ns $n) || die "cannot create netns $(ns $n)"
        ip link add vflow$ID-$n type veth peer name eth0 netns $(ns $n) || die "veth for n$n"
        ip link set vflow$ID-$n master $BR && ip link set vflow$ID-$n up || die "veth up n$n"
        # nsenter --net, not `ip -n`: that one remounts / (--make-rslave), which fails
        # where / is not a mount point (a chroot)
        nse="nsenter --net=/run/netns/$(ns $n)"
        $nse ip addr add $NET.1$n/24 dev eth0 && $nse ip link set eth0 up &&
            $nse ip link set lo up || die "address of n$n"
        NODELINES="${NODELINES}NodeName=n$n NodeAddr=$NET.1$n CPUs=$CPUS RealMemory=4000 State=UNKNOWN
"
    done

    cat > "$DIR/slurm.conf" << EOF
# generated by tests/harness/slurm-cluster.sh
ClusterName=flow$ID
SlurmctldHost=$(hostname -s)($NET.1)
MailProg=/bin/true
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdTimeout=10
SlurmctldTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
ReturnToService=2
MpiDefault=none
$NODELINES
PartitionName=flow Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    SLURM_CONF=$DIR/slurm.conf
    export SLURM_CONF
    slurmctld -f "$SLURM_CONF" -i > /dev/null 2> "$DIR/log/slurmctld.err" ||
        die "slurmctld did not start: $(tail -n2 "$DIR/log/slurmctld.log" 2> /dev/null)"
    for n in $NODES; do
        nsenter --net=/run/netns/$(ns $n) slurmd -N n$n -f "$SLURM_CONF" \
            > /dev/null 2> "$DIR/log/slurmd.n$n.err" ||
            die "slurmd n$n did not start: $(tail -n2 "$DIR/log/slurmd.n$n.log" 2> /dev/null)"
    done
    # wait until the three nodes are idle
    i=0
    while :; do
        idle=$(timeout 5 sinfo -h -N -t idle -o '%N' 2> /dev/null | sort -u | wc -l)
        [ "$idle" -ge 3 ] && break
        i=$((i + 1))
        if [ $i -ge 150 ]; then
            sinfo -N >&2
            tail -n3 "$DIR/log/slurmctld.log" "$DIR"/log/slurmd.n*.log >&2
            die "the nodes were not idle after 30 s"
        fi
        sleep 0.2
    done
    echo "SLURM_CONF=$SLURM_CONF; export SLURM_CONF"
}

case ${1:-} in
check) check ;;
start) [ $# = 2 ] || die "usage: start DIR"; start "$2" ;;
stop) [ $# = 2 ] || die "usage: stop DIR"; stop "$2" ;;
netns) [ $# = 3 ] || die "usage: netns DIR N"; ids "$2"; ns "$3" ;;
*) die "usage: slurm-cluster.sh check | start DIR | stop DIR | netns DIR N" ;;
esac
