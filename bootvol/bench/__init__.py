"""`bootvol bench`: every provisioning path measured side by side on a throwaway cluster.

cluster.py    the throwaway estate: XFS reflink FlexVols on loop devices (or folders)
server.py     the stand-in remote image service: an HTTP server in its own process
reference.py  the naive path run by hand (curl, sha512sum, qemu-img) beside the download
runner.py     the measurements, path by path and size by size
results.py    what was measured (dataclasses), its statistics, the targets, the JSON
boot.py       ``--boot``: servers booted from bootvol volumes, timed from the request
boot_results.py  what ``--boot`` measured (dataclasses), its checks, the JSON

Tools the benchmark shares with ``bootvol demo`` and the tests (not part of the product):
samples.py       sample disk images (sparse raw with data in every other MiB, its qcow2)
local_server.py  an HTTP file server on loopback, in a thread
loopback.py      throwaway XFS, btrfs, ext4 and tmpfs filesystems on loop devices
content.py       checksums of files and of what a volume reads (raw or qcow2)
guest.py         the guest image (scripts/guest-image), its console line, QEMU's reach
host.py          a compute host in the caller's process: ask, wait for guest lines, delete

The real OpenStack Cinder running bootvol's driver (the Cinder tests, ``scripts/cinder-demo``):
cinder_stack.py  CinderStack: the whole stack up by conditions and down without leftovers
cinder_conf.py   cinder.conf from typed backends (bootvol_backend: the driver's options)
cinder_bootvol.py  bootvol's Keystone and Glance for the stack: users, clouds.yaml
cinder_client.py the stack driven as its users: Cinder's API, the real ``openstack`` command
cinder_readiness.py  when the stack is ready, by conditions (API, services up, pools known)
cinder_layout.py the tests' and demo's estate: images, vol_a (bv_a), vol_b (bv_b) on loop XFS
cinder_demo.py   ``scripts/cinder-demo``: three volumes by the real ``openstack`` command
rabbitmq.py      a private RabbitMQ (own node, ports, epmd) in a folder
postgres.py      a throwaway PostgreSQL on a unix socket (Cinder's database; the tests')
processes.py     children in sessions of their own, stopped by process group
"""
