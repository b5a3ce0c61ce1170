"""The lab's shared-target array: a cinder-volume driver for the lab's guest LIO target.

Cinder's own LVM + lioadm backend gives each volume its own IQN at LUN 0 and so never
reuses a LUN number; the CVE-2023-2088 leak needs what real arrays do: one target IQN
behind two portals, each new export at the lowest free LUN, unit serials that are the
array's own (NOT the Cinder volume ids), CHAP on the target. This driver keeps no state
of its own: the array (tests/lab/openstack/guest-agent.py, "/array" endpoints, in the
lab guest) holds the backing files, the LUN table and the serials; the driver reaches it
over HTTP through QEMU's hostfwd (option lab_agent).

Loaded by cinder-volume from the project's tree (PYTHONPATH=tests/lab/openstack,
volume_driver = lunwatch_lab.driver.LabSharedTargetDriver).
"""
import json
import time
import urllib.error
import urllib.request

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder import interface
from cinder.volume import driver

LOG = logging.getLogger(__name__)

lab_opts = [
    cfg.StrOpt("lab_agent", default="127.0.0.1:18700",
               help="host:port of the lab guest's array agent (QEMU hostfwd)"),
    cfg.ListOpt("lab_portals", default=["127.0.0.1:3260", "127.0.0.2:3260"],
                help="the shared target's portals as the initiator reaches them"),
    cfg.StrOpt("lab_target_iqn", default="iqn.2010-10.org.openstack:volumes-shared",
               help="the one target IQN every volume is exported on"),
    cfg.IntOpt("lab_agent_timeout", default=180,
               help="seconds to keep retrying an agent that does not answer yet "
                    "(the guest boots after the control plane)"),
]
cfg.CONF.register_opts(lab_opts, group="backend_defaults")


@interface.volumedriver
class LabSharedTargetDriver(driver.VolumeDriver):
    VERSION = "1.0.0"
    CI_WIKI_NAME = "lunwatch_lab"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(lab_opts)
        self._stats = {}

    @staticmethod
    def get_driver_options():
        return lab_opts

    # ------------------------------------------------------------ the agent
    def _agent(self, method, path, body=None):
        url = "http://%s/array%s" % (self.configuration.lab_agent, path)
        data = json.dumps(body).encode() if body is not None else None
        deadline = time.monotonic() + self.configuration.lab_agent_timeout
        while True:
            req = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                msg = e.read()[:300].decode(errors="replace")
                raise exception.VolumeBackendAPIException(
                    data="lab array %s %s: HTTP %d %s" % (method, path, e.code, msg))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if time.monotonic() >= deadline:
                    raise exception.VolumeBackendAPIException(
                        data="lab array %s %s: %s" % (method, path, e))
                LOG.info("lab array not answering yet (%s); retrying", e)
                time.sleep(2)

    # ------------------------------------------------------------ setup and stats
    def do_setup(self, context):
        pass  # the guest (and so the array) may boot after cinder-volume starts

    def check_for_setup_error(self):
        if len(self.configuration.lab_portals) < 1:
            raise exception.InvalidConfigurationValue(option="lab_portals", value="")

    def _update_volume_stats(self):
        name = self.configuration.safe_get("volume_backend_name") or "lab"
        self._stats = {
            "volume_backend_name": name,
            "vendor_name": "lunwatch lab",
            "driver_version": self.VERSION,
            "storage_protocol": "iSCSI",
            "total_capacity_gb": 1000,
            "free_capacity_gb": 1000,
            "reserved_percentage": 0,
            "shared_targets": True,
            "multiattach": False,
            "thin_provisioning_support": True,
        }

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    # ------------------------------------------------------------ volumes
    def create_volume(self, volume):
        r = self._agent("POST", "/volumes", {"id": volume.id, "size_gb": volume.size})
        # the array's serial, not the volume id: as real arrays
        return {"provider_id": r["serial"], "provider_location": "lab:" + r["serial"]}

    def delete_volume(self, volume):
        self._agent("DELETE", "/volumes/" + volume.id)

    def extend_volume(self, volume, new_size):
        self._agent("POST", "/volumes/%s/extend" % volume.id, {"size_gb": new_size})

    def create_export(self, context, volume, connector):
        return None

    def ensure_export(self, context, volume):
        return None

    def remove_export(self, context, volume):
        return None

    # ------------------------------------------------------------ connections
    def initialize_connection(self, volume, connector):
        r = self._agent("POST", "/exports", {"volume_id": volume.id,
                                             "initiator": (connector or {}).get("initiator")})
        portals = list(self.configuration.lab_portals)
        iqn = self.configuration.lab_target_iqn
        lun = int(r["lun"])
        data = {
            "target_discovered": False,
            "target_portal": portals[0],
            "target_iqn": iqn,
            "target_lun": lun,
            "target_portals": portals,
            "target_iqns": [iqn] * len(portals),
            "target_luns": [lun] * len(portals),
            "volume_id": volume.id,
            "discard": False,
        }
        if r.get("auth_username"):
            data.update(auth_method="CHAP", auth_username=r["auth_username"],
                        auth_password=r["auth_password"])
        else:
            data["auth_method"] = None
        return {"driver_volume_type": "iscsi", "data": data}

    def terminate_connection(self, volume, connector, **kwargs):
        self._agent("DELETE", "/exports/" + volume.id)
