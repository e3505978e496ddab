"""write_lines(path, lines): writes byte strings to path atomically (a
temporary file in the same folder, fsync, rename), as every lpsynth output is
written. Shared by the scripts of this folder."""
import os, tempfile


def write_lines(path, lines):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
