# Sourced by tests/package/check: a clean Debian 12 root made by debootstrap, cached
# under /var/tmp by the content hash of everything that decides its contents (the
# debootstrap command line and debootstrap's version), like the lab's initramfs.
# Each run works on a fresh copy; the cache is never modified after it is made.

ROOT_SUITE=bookworm
ROOT_MIRROR=${LUNWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3: Ansible's managed-node requirement (the role runs modules in the root).
# Nothing else: what lunwatch needs must come from the package's Depends.
ROOT_INCLUDE=python3
ROOT_CACHE_DIR=${LUNWATCH_ROOT_CACHE:-/var/tmp/lunwatch-debootstrap}

root_key() {
	{
		echo "debootstrap --variant=minbase --include=$ROOT_INCLUDE $ROOT_SUITE ROOT $ROOT_MIRROR"
		dpkg-query -W -f='${Version}\n' debootstrap
	} | sha256sum | cut -c1-16
}

# root_cached: prints the path of the cached root, making it if missing
root_cached() {
	local key dir
	key=$(root_key)
	dir=$ROOT_CACHE_DIR/$key
	if [[ -f $dir/.complete ]]; then
		echo "root: cached $dir" >&2
		echo "$dir"
		return 0
	fi
	rm -rf "$dir.tmp"
	mkdir -p "$ROOT_CACHE_DIR"
	echo "root: debootstrap $ROOT_SUITE (minbase, +$ROOT_INCLUDE) from $ROOT_MIRROR into $dir" >&2
	local t0=$SECONDS
	if ! debootstrap --variant=minbase --include="$ROOT_INCLUDE" "$ROOT_SUITE" "$dir.tmp" "$ROOT_MIRROR" \
		> "$ROOT_CACHE_DIR/$key.log" 2>&1; then
		echo "root: debootstrap failed; last lines of $ROOT_CACHE_DIR/$key.log:" >&2
		tail -5 "$ROOT_CACHE_DIR/$key.log" >&2
		return 1
	fi
	rm -rf "$dir.tmp"/var/cache/apt/archives/*.deb
	touch "$dir.tmp/.complete"
	mv "$dir.tmp" "$dir"
	# keep only this key: older roots are dead weight (never one in use: those are
	# overlay lower dirs, and rm stays on its file system)
	find "$ROOT_CACHE_DIR" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name "$key.tmp" \
		-exec rm -rf --one-file-system {} +
	echo "root: made in $((SECONDS - t0))s" >&2
	echo "$dir"
}

# root_work CACHED WORK [ARCHIVES]: a writable copy of CACHED at WORK (overlayfs when it
# mounts here, else a copy), with /proc, /sys, /dev, /run and an apt archive cache
# (/var/tmp/lunwatch-apt-archives/ARCHIVES: one per root used at the same time, apt
# locks it)
ROOT_MOUNTS=()
root_work() {
	local cached=$1 work=$2 archives=${LUNWATCH_APT_ARCHIVES:-/var/tmp/lunwatch-apt-archives}/${3:-a}
	mkdir -p "$work"/{upper,wd,root}
	if mount -t overlay overlay -o "lowerdir=$cached,upperdir=$work/upper,workdir=$work/wd" "$work/root" 2>/dev/null; then
		ROOT_MOUNTS+=("$work/root")
	else
		cp -a "$cached/." "$work/root/"
	fi
	local r=$work/root
	mount -t proc proc "$r/proc" && ROOT_MOUNTS+=("$r/proc")
	mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys" && ROOT_MOUNTS+=("$r/sys")
	mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev" && ROOT_MOUNTS+=("$r/dev")
	mount -t tmpfs tmpfs "$r/run" && ROOT_MOUNTS+=("$r/run")
	mkdir -p "$archives/partial"
	mount --bind "$archives" "$r/var/cache/apt/archives" && ROOT_MOUNTS+=("$r/var/cache/apt/archives")
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	# no daemons start inside the root (Debian's policy-rc.d convention)
	printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
	chmod 0755 "$r/usr/sbin/policy-rc.d"
}

root_cleanup() {
	local i
	for ((i = ${#ROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
		umount -R "${ROOT_MOUNTS[$i]}" 2>/dev/null || umount -lR "${ROOT_MOUNTS[$i]}" 2>/dev/null || true
	done
	ROOT_MOUNTS=()
}
