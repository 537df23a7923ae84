"""dirlib: libc's directory stream (opendir, readdir, telldir, seekdir, closedir) through ctypes,
for the tests that read a listing piece by piece or look at d_type, which Python's os.scandir
hides. Import it with the tests' directory on PYTHONPATH."""
import ctypes
import ctypes.util

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Dirent(ctypes.Structure):
    _fields_ = [("ino", ctypes.c_uint64), ("off", ctypes.c_int64), ("reclen", ctypes.c_ushort),
                ("type", ctypes.c_ubyte), ("name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.closedir.argtypes = [ctypes.c_void_p]


def rest(h):
    """(name, d_type) of each entry left in directory stream h, "." and ".." left out."""
    while True:
        e = libc.readdir(h)
        if not e:
            return
        name = e.contents.name.decode()
        if name not in (".", ".."):
            yield name, e.contents.type
