"""Does the default gateway answer?  An ICMP echo without spawning ``ping``.

An unprivileged ICMP datagram socket (``SOCK_DGRAM``/``IPPROTO_ICMP``, allowed
by ``net.ipv4.ping_group_range``) or, as root, a raw ICMP socket.  Stdlib only.
"""

import os
import select
import socket
import struct
import time

ROUTES = "/proc/net/route"


def default_gateway(routes=ROUTES):
    """The IPv4 default gateway from the kernel's routing table, or None."""
    try:
        with open(routes) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[1] != "00000000":
            continue
        try:
            if int(fields[3], 16) & 0x2:   # RTF_GATEWAY
                return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
        except (ValueError, struct.error):
            continue   # not the kernel's format: no gateway from this line
    return None


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _open():
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), False
    except PermissionError:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), True


def answers(address, timeout=1.0, tries=2):
    """True if ``address`` answers an ICMP echo within ``timeout`` (per try).

    Raises OSError when no ICMP socket can be opened (neither datagram nor raw).
    """
    sock, raw = _open()
    try:
        ident = os.getpid() & 0xFFFF
        for seq in range(1, tries + 1):
            payload = b"otpme-auth dot1x"
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            try:
                sock.sendto(packet, (address, 0))
            except OSError:   # no route: the link is down
                return False
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
                    break
                data, source = sock.recvfrom(2048)
                if raw:
                    data = data[(data[0] & 0x0F) * 4:]   # skip the IP header
                if len(data) >= 8 and data[0] == 0 and source[0] == address:
                    # a datagram socket rewrites the identifier: match the sequence only
                    if struct.unpack("!H", data[6:8])[0] == seq:
                        return True
        return False
    finally:
        sock.close()
