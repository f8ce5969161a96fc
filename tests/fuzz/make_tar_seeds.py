# Writes the seed inputs of the tar fuzz target (tests/fuzz/corpus/tar): tiny archives of an
# image folder as tar tools write them (a file; a class directory and its file; a path past
# 100 bytes as a ustar prefix, a GNU long-name entry and a pax header), each cut to its
# members and the two end-of-archive blocks (2-3.5 KB; tar pads to 10 KB). And two inputs by
# hand: a root entry "./" first, as `tar -C DIR -cf x.tar .` writes (refused before: the
# reader took it for a path outside), and a pax path with a NUL byte (which the file system
# would cut short, so that it escaped the check for a repeated path).
# Usage: /usr/bin/python3 tests/fuzz/make_tar_seeds.py tests/fuzz/corpus/tar
import io
import os
import sys
import tarfile

LONG = "class_with_a_long_name_" + "x" * 60 + "/image_with_a_long_name_" + "y" * 40 + ".png"


def entry(name, data=None, pax=None):
    info = tarfile.TarInfo(name)
    info.pax_headers = pax or {}
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = len(data), 0o644
    return info, data


def archive(fmt, entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        end = tar.offset
    return buffer.getvalue()[:end] + bytes(1024)


SEEDS = {
    "file.tar": (tarfile.USTAR_FORMAT, [entry("a.png", b"\x89PNG\r\n\x1a\n")]),
    "dir_and_file.tar": (tarfile.USTAR_FORMAT, [entry("coat"), entry("coat/x.png", b"pixels")]),
    "long_prefix.tar": (tarfile.USTAR_FORMAT, [entry(LONG, b"long")]),
    "long_gnu.tar": (tarfile.GNU_FORMAT, [entry(LONG, b"long")]),
    "long_pax.tar": (tarfile.PAX_FORMAT, [entry(LONG, b"long")]),
    "root_entry.tar": (tarfile.GNU_FORMAT, [entry("./"), entry("./coat"), entry("./coat/x.png", b"pixels")]),
    "nul_in_pax_path.tar": (tarfile.PAX_FORMAT,
                            [entry("a.png", b"1"), entry("b.png", b"2", {"path": "a.png\0"})]),
}

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, (fmt, entries) in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(archive(fmt, entries))
