"""readers: threads that open, read and close one path in a loop until stopped, ignoring errors
(the path is renamed or unlinked under them): opens racing a name change through the mount.
Import it with the tests' directory on PYTHONPATH.

    with Readers(path, 3):
        os.rename(path, other)      # the readers stop and are joined when the block ends
"""
import os
import threading


class Readers:
    def __init__(self, path, count):
        self.path = path
        self.stop = False
        self.threads = [threading.Thread(target=self._loop) for _ in range(count)]

    def _loop(self):
        while not self.stop:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.read(fd, 65536)
                finally:
                    os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        for t in self.threads:
            t.join()
        return False
