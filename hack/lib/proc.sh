#!/usr/bin/env bash
# proc.sh: starting, watching and stopping the long-running processes of the
# test bed and the cluster tier. Source it; it needs RUN (pid files), LOGS
# (log files) and the functions log and die from the sourcing script.
#
# A process is known by a NAME: $RUN/NAME.pid holds "PID EXE", and the
# process counts as alive only while PID still executes EXE, so a recycled pid
# is never mistaken for it.

EXEC_TIMEOUT=${EXEC_TIMEOUT:-10} # seconds for a spawned process to become the binary it runs
STOP_TIMEOUT=${STOP_TIMEOUT:-10} # seconds after SIGTERM before SIGKILL, and again for ports

# runs_exe PID EXE is true when process PID executes EXE (also after the
# binary was rebuilt under it, when the kernel reports it "(deleted)").
runs_exe() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[[ $exe == "$2" || $exe == "$2 (deleted)" ]]
}

# pid_of NAME prints the recorded pid of NAME.
pid_of() {
	local pid exe
	[[ -f $RUN/$1.pid ]] || return 1
	read -r pid exe <"$RUN/$1.pid" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	echo "$pid"
}

# alive NAME is true when the process recorded for NAME runs its binary.
alive() {
	local pid exe
	[[ -f $RUN/$1.pid ]] || return 1
	read -r pid exe <"$RUN/$1.pid" || return 1
	[[ $pid =~ ^[0-9]+$ && -n $exe ]] || return 1
	runs_exe "$pid" "$exe"
}

# spawn NAME EXE ARGS... starts EXE in its own session, logging to
# $LOGS/NAME.log. spawn_in PID NAME EXE ARGS... does the same inside the
# network and mount namespaces of process PID (a node of the cluster tier).
# Both return once the new process executes EXE.
#
# $! is the pid of the forked shell, which becomes setsid (and nsenter) and
# then, by exec, EXE: setsid does not fork again, since a background job of a
# script without job control is no process-group leader, and nsenter without
# --pid does not fork either. Until that last exec /proc/PID/exe names bash,
# setsid or nsenter, so a liveness check made in that window would report a
# healthy start as "exited"; on a loaded machine the window is long enough to
# be hit in about one start in six. So wait for the exec here, and from then on
# `alive` means what it says.
spawn() { _spawn "$1" "$2" "${@:2}"; }
# _spawn NAME EXE COMMAND... is the general form: COMMAND ends by exec'ing EXE.
spawn_in() {
	local nspid=$1
	shift
	_spawn "$1" "$2" nsenter -t "$nspid" -n -m -- "${@:2}"
}

_spawn() {
	local name=$1 exe=$2 pid i
	shift 2
	mkdir -p "$LOGS" "$RUN"
	# Lock descriptors (8: cluster.sh, 9: testbed.sh) stay with the script.
	setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 8>&- 9>&- &
	pid=$!
	echo "$pid $exe" >"$RUN/$name.pid"
	for ((i = 0; i < EXEC_TIMEOUT * 20; i++)); do
		runs_exe "$pid" "$exe" && return
		readlink "/proc/$pid/exe" >/dev/null 2>&1 ||
			die "$name exited as it started; see $LOGS/$name.log"
		sleep 0.05
	done
	die "$name (pid $pid) did not start $exe within ${EXEC_TIMEOUT}s; see $LOGS/$name.log"
}

# stop NAME PORT... sends TERM, then KILL after STOP_TIMEOUT, and waits until
# the process is gone and the TCP ports are free.
stop() {
	local name=$1 pid
	shift
	if alive "$name"; then
		pid=$(pid_of "$name")
		log "stopping $name (pid $pid)"
		kill_wait "$name" "$pid"
	fi
	rm -f "$RUN/$name.pid"
	wait_ports_free "$@"
}

# kill_wait NAME PID sends TERM to PID, KILL after STOP_TIMEOUT, and returns
# once it is gone.
kill_wait() {
	local name=$1 pid=$2 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
	log "$name did not exit after ${STOP_TIMEOUT}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
	die "$name (pid $pid) survived SIGKILL"
}

# port_free PORT is true when nothing listens on TCP port PORT.
port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }

wait_ports_free() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
			port_free "$p" && break
			sleep 0.1
		done
		port_free "$p" || die "port $p is still in use"
	done
}

# free_port prints a TCP port nothing listens on, not in $* (already chosen).
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		[[ " $* " == *" $p "* ]] && continue
		port_free "$p" && {
			echo "$p"
			return
		}
	done
	die "no free port found"
}
