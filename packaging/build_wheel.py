"""Writes one wheel from a package directory, with the standard library only (no build backend
to install, no network): the files, METADATA, WHEEL, entry_points.txt and RECORD.

    python3 packaging/build_wheel.py --name sqlite-cloud-sync --version 0.1.0 \
        --tag py3-none-manylinux_2_28_x86_64 --package packaging/python/sqlite_cloud_sync \
        --file target/.../libcloud_sync.so=sqlite_cloud_sync/cloud_sync.so --out dist

Prints the wheel's path. Called by scripts/package.sh.
"""

import argparse
import base64
import hashlib
import os
import zipfile

# Fixed timestamps: the same inputs give the same wheel, byte for byte.
EPOCH = (2020, 1, 1, 0, 0, 0)


def record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def metadata(args):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {args.name}",
        f"Version: {args.version}",
        f"Summary: {args.summary}",
        "License: MIT",
        "Requires-Python: >=3.8",
    ]
    lines += [f"Requires-Dist: {requirement}" for requirement in args.requires]
    if args.readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(args.readme, encoding="utf-8") as readme:
            return "\n".join(lines) + "\n\n" + readme.read()
    return "\n".join(lines) + "\n"


def entry_points(specs):
    """`group:name=module` specs as an entry_points.txt."""
    groups = {}
    for spec in specs:
        group, assignment = spec.split(":", 1)
        groups.setdefault(group, []).append(assignment.replace("=", " = ", 1))
    return "".join(
        f"[{group}]\n" + "".join(f"{line}\n" for line in lines) + "\n"
        for group, lines in groups.items()
    )


def package_files(package, version):
    """(arcname, bytes) of every file of the package directory, @VERSION@ filled in."""
    root = os.path.dirname(os.path.abspath(package))
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read().replace(b"@VERSION@", version.encode())
            yield os.path.relpath(path, root).replace(os.sep, "/"), data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--tag", required=True, help="python-abi-platform, e.g. py3-none-any")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--package", required=True, help="the import package's directory")
    parser.add_argument("--file", action="append", default=[], help="SOURCE=ARCNAME")
    parser.add_argument("--requires", action="append", default=[])
    parser.add_argument("--entry-point", action="append", default=[], help="group:name=module")
    parser.add_argument("--readme")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    distribution = args.name.replace("-", "_")
    info = f"{distribution}-{args.version}.dist-info"
    files = list(package_files(args.package, args.version))
    for spec in args.file:
        source, arcname = spec.split("=", 1)
        with open(source, "rb") as f:
            files.append((arcname, f.read()))
    purelib = "true" if args.tag.endswith("-any") else "false"
    files.append((f"{info}/METADATA", metadata(args).encode()))
    files.append(
        (
            f"{info}/WHEEL",
            (
                "Wheel-Version: 1.0\nGenerator: cloud_sync build_wheel.py\n"
                f"Root-Is-Purelib: {purelib}\nTag: {args.tag}\n"
            ).encode(),
        )
    )
    if args.entry_point:
        files.append((f"{info}/entry_points.txt", entry_points(args.entry_point).encode()))

    os.makedirs(args.out, exist_ok=True)
    wheel = os.path.join(args.out, f"{distribution}-{args.version}-{args.tag}.whl")
    record = [record_line(arcname, data) for arcname, data in files]
    record.append(f"{info}/RECORD,,")
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in files:
            entry = zipfile.ZipInfo(arcname, EPOCH)
            # Shared libraries keep their execute bit.
            mode = 0o755 if arcname.endswith(".so") else 0o644
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    print(wheel)


if __name__ == "__main__":
    main()
