"""Does a compiled extension hold CUDA device code? (standard library only; no CUDA tools needed)

    python3 cuda_kernel.py FILE.so [KERNEL]

nvcc embeds a CUDA kernel's device code as a fatbinary in an ELF section named `.nv_fatbin`, and the
host code registers each kernel under its mangled name, a string that stripping keeps. Prints one
JSON object: {"file", "fatbin_bytes", "kernel", "kernel_registered"}; exits 1 when there is no
fatbinary or when KERNEL (default: pufferlib's puff_advantage_kernel) is not registered.
Dockerfile.cuda runs it after building pufferlib-core; tests/test_images.py runs it in the image.
"""

import json
import struct
import sys

FATBIN_SECTION = b".nv_fatbin"
DEFAULT_KERNEL = "puff_advantage_kernel"


def section_sizes(data: bytes) -> dict[bytes, int]:
    """{section name: size} of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    sizes = {}
    for name_index, _type, _flags, _addr, _offset, size, *_ in headers:
        start = names_offset + name_index
        sizes[data[start : data.index(b"\0", start)]] = size
    return sizes


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, kernel = argv[1], argv[2] if len(argv) == 3 else DEFAULT_KERNEL
    with open(path, "rb") as f:
        data = f.read()
    try:
        fatbin = section_sizes(data).get(FATBIN_SECTION, 0)
    except (ValueError, struct.error, IndexError) as err:
        print(f"cuda_kernel.py: {path}: {err}", file=sys.stderr)
        return 1
    # The Itanium-mangled name of a free function `kernel` in any namespace ends in len(kernel)+kernel.
    registered = f"{len(kernel)}{kernel}".encode() in data
    print(json.dumps({"file": path, "fatbin_bytes": fatbin, "kernel": kernel, "kernel_registered": registered}))
    if not fatbin:
        print(f"cuda_kernel.py: {path} has no {FATBIN_SECTION.decode()} section: no CUDA kernel", file=sys.stderr)
        return 1
    if not registered:
        print(f"cuda_kernel.py: {path} does not register the kernel {kernel}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
