# Sourced by scripts/lab (on the host): finds or fetches the guest kernel.
#
# lab_kernel SPEC sets KVER (uname -r in the guest), KERNEL (vmlinuz), KMODROOT (the root
# under which lib/modules/$KVER lives: / for the host's own kernel, an unpacked package
# otherwise), KCONFIG (the kernel's config file) and KSOURCE (where it came from).
#   SPEC: "" (the newest /boot/vmlinuz-*-amd64 installed), a series 5.10 | 6.1 | 6.12,
#   or an exact version (5.10.0-32-amd64, 6.12.57+deb13-amd64).
# A series maps to a Debian suite whose linux-image-amd64 carries it. A kernel not
# installed on the host is fetched by package name through a private apt source list and
# apt state under $KCACHE/apt-SUITE (the system's apt sources and state are never read
# or written), unpacked with dpkg-deb -x into $KCACHE/<sha256 of the .deb>/, its
# modules indexed with depmod -b. Nothing is fetched again while that folder is complete;
# the suite's package index is refreshed when older than a day (LAB_KERNEL_REFRESH=1:
# now). The guest binds $KMODROOT/lib/modules/$KVER over /lib/modules/$KVER (lab.modroot).

declare -A LAB_SERIES_SUITE=([5.10]=bullseye [6.1]=bookworm [6.12]=trixie)
LAB_SERIES=(5.10 6.1 6.12)
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
KCACHE=${KCACHE:-$CACHE/kernels}

# Series of a version string: 5.10.0-32-amd64 -> 5.10, 6.12.57+deb13-amd64 -> 6.12
lab_series_of() { sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<< "$1"; }

_lab_apt() {  # _lab_apt SUITE apt-get|apt-cache ARGS...: apt confined to the lab cache
	local suite=$1 tool=$2; shift 2
	local d=$KCACHE/apt-$suite
	"$tool" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
		-o Dir::State="$d/state" -o Dir::State::status="$d/state/status" \
		-o Dir::Cache="$d/cache" -o Debug::NoLocking=1 \
		-o APT::Architecture=amd64 -o APT::Architectures=amd64 -q "$@"
}

_lab_apt_index() {  # _lab_apt_index SUITE: the suite's Packages index, refreshed daily
	local suite=$1 d=$KCACHE/apt-$suite
	mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" || return 1
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $LAB_MIRROR $suite main" > "$d/sources.list"
	[[ -e $d/state/status ]] || : > "$d/state/status"
	local stamp=$d/state/updated
	if [[ ${LAB_KERNEL_REFRESH:-0} == 1 || ! -e $stamp || -n $(find "$stamp" -mmin +1440) ]]; then
		echo "lab: apt index of $suite ($LAB_MIRROR) into $d" >&2
		_lab_apt "$suite" apt-get update > "$d/update.log" 2>&1 \
			|| { echo "lab: apt-get update for $suite failed:" >&2; tail -5 "$d/update.log" >&2; return 1; }
		touch "$stamp"
	fi
}

_lab_fetch() {  # _lab_fetch SUITE PACKAGE: sets KVER KERNEL KMODROOT KCONFIG from the package
	local suite=$1 pkg=$2 real sha ver dir deb
	_lab_apt_index "$suite" || return 1
	# Warm path: what this package name resolved to under the current index (apt-cache
	# parses the whole index, seconds under load), as long as its folder is complete.
	local memo=$KCACHE/apt-$suite/resolved-$pkg
	if [[ -s $memo && $memo -nt $KCACHE/apt-$suite/state/updated ]]; then
		read -r real sha < "$memo"
		dir=$KCACHE/${sha:0:16}
		if [[ -e $dir/.complete ]]; then
			ver=$(ls "$dir/root/lib/modules" | head -1)
			KVER=$ver KERNEL=$dir/root/boot/vmlinuz-$ver KMODROOT=$dir/root KCONFIG=$dir/root/boot/config-$ver
			KSOURCE="$real from $suite (sha256 ${sha:0:16}, cached in $dir)"
			return 0
		fi
	fi
	real=$pkg
	# A metapackage (linux-image-amd64) names the real image in its first Depends.
	if [[ $pkg == linux-image-amd64 ]]; then
		real=$(_lab_apt "$suite" apt-cache depends "$pkg" 2>/dev/null \
			| sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -1)
		[[ -n $real ]] || { echo "lab: $suite has no $pkg" >&2; return 1; }
	fi
	sha=$(_lab_apt "$suite" apt-cache show --no-all-versions "$real" 2>/dev/null | sed -n 's/^SHA256: //p' | head -1)
	[[ -n $sha ]] || { echo "lab: package $real not found in $suite" >&2; return 1; }
	dir=$KCACHE/${sha:0:16}
	if [[ ! -e $dir/.complete ]]; then
		echo "lab: fetching $real ($suite) -> $dir" >&2
		rm -rf "$dir" "$dir.tmp"
		mkdir -p "$dir.tmp/deb" || return 1
		(cd "$dir.tmp/deb" && _lab_apt "$suite" apt-get download "$real") > "$dir.tmp/download.log" 2>&1 \
			|| { echo "lab: apt-get download $real failed:" >&2; tail -5 "$dir.tmp/download.log" >&2; return 1; }
		deb=$(ls "$dir.tmp"/deb/*.deb | head -1)
		[[ $(sha256sum "$deb" | cut -d' ' -f1) == "$sha" ]] \
			|| { echo "lab: $deb does not have the index's SHA256 $sha" >&2; return 1; }
		dpkg-deb -x "$deb" "$dir.tmp/root" || return 1
		# merged-/usr packages ship usr/lib/modules: one place for modprobe -d and the guest
		if [[ -d $dir.tmp/root/usr/lib/modules && ! -d $dir.tmp/root/lib/modules ]]; then
			mkdir -p "$dir.tmp/root/lib" && mv "$dir.tmp/root/usr/lib/modules" "$dir.tmp/root/lib/modules"
		fi
		ver=$(ls "$dir.tmp/root/lib/modules" | head -1)
		[[ -n $ver && -f $dir.tmp/root/boot/vmlinuz-$ver ]] || { echo "lab: $deb has no boot/vmlinuz + lib/modules" >&2; return 1; }
		depmod -b "$dir.tmp/root" "$ver" || { echo "lab: depmod for $ver failed" >&2; return 1; }
		rm -f "$deb"
		echo "$real $suite $sha" > "$dir.tmp/package"
		mv "$dir.tmp" "$dir" && touch "$dir/.complete"
	fi
	echo "$real $sha" > "$memo"
	ver=$(ls "$dir/root/lib/modules" | head -1)
	KVER=$ver KERNEL=$dir/root/boot/vmlinuz-$ver KMODROOT=$dir/root KCONFIG=$dir/root/boot/config-$ver
	KSOURCE="$real from $suite (sha256 ${sha:0:16}, cached in $dir)"
}

lab_kernel() {  # lab_kernel SPEC
	local spec=$1 series
	if [[ -z $spec ]]; then
		spec=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|.*/vmlinuz-||' | sort -V | tail -1)
		[[ -n $spec ]] || { echo "lab: no /boot/vmlinuz-*-amd64: run scripts/install-deps --lab or use --kernel" >&2; return 1; }
	fi
	# Installed on the host (exact version, or the host's kernel of that series): use it.
	local inst
	for inst in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|.*/vmlinuz-||' | sort -rV); do
		if [[ $inst == "$spec" || $(lab_series_of "$inst") == "$spec" ]] && [[ -d /lib/modules/$inst ]]; then
			KVER=$inst KERNEL=/boot/vmlinuz-$inst KMODROOT=/ KCONFIG=/boot/config-$inst
			KSOURCE="installed on the host"
			return 0
		fi
	done
	series=$(lab_series_of "$spec")
	local suite=${LAB_SERIES_SUITE[$series]:-}
	[[ -n $suite ]] || { echo "lab: no Debian suite known for kernel '$spec' (have: ${LAB_SERIES[*]})" >&2; return 1; }
	if [[ $spec == "$series" ]]; then
		_lab_fetch "$suite" linux-image-amd64
	else
		_lab_fetch "$suite" "linux-image-$spec"
	fi
}

# Kernel command line for the BPF LSM: prints "lsm=LIST,bpf" when the kernel has
# CONFIG_BPF_LSM but does not enable bpf by default; nothing when bpf is already in
# CONFIG_LSM; returns 1 (and says why on stdout) when the kernel cannot have it.
lab_lsm_arg() {
	local cfg=$1 list
	[[ -r $cfg ]] || { echo "no kernel config ($cfg) to tell whether the BPF LSM exists"; return 1; }
	grep -q '^CONFIG_BPF_LSM=y' "$cfg" || { echo "CONFIG_BPF_LSM is not set in $(basename "$cfg")"; return 1; }
	list=$(sed -n 's/^CONFIG_LSM="\(.*\)"/\1/p' "$cfg")
	case ",$list," in *,bpf,*) return 0 ;; esac
	echo "lsm=${list:+$list,}bpf"
}
