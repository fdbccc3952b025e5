"""Run by the fork server's tests as a step would be: says where it runs, then exits with the status it is given."""

import json
import os
import sys
import time

if __name__ == "__main__":
    status, seconds = int(sys.argv[1]), float(sys.argv[2])
    print(json.dumps({"pid": os.getpid(), "parent": os.getppid(), "cwd": os.getcwd(), "argv": sys.argv[1:],
                      "probe": os.environ.get("PROBE"), "preloaded": "colorsys" in sys.modules}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    time.sleep(seconds)
    sys.exit(status)
