import signal


def install_stop_handler():
    stopped = []  # a list both functions see: the handler appends to it, stop_requested reads it
    previous = {}

    def handler(signum, frame):
        stopped.append(signum)  # only note it: the loop stops after the step it is in
        for sig, old in previous.items():  # a second signal acts as it did before this install
            signal.signal(sig, old)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)  # signal.signal returns the handler it replaces

    def stop_requested():
        return bool(stopped)

    def uninstall():
        for sig, old in previous.items():
            signal.signal(sig, old)

    return stop_requested, uninstall
