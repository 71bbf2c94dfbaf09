import io
import sys
import time

import pytest

from fashionrec_testing import supervisor
from fashionrec_testing.supervisor import Supervisor, free_port, http_ok, tcp_open


def test_prefixes_output_and_stops_children_on_exit():
    out = io.StringIO()
    with Supervisor(out=out, colour=False, grace_s=2) as sup:
        child = sup.start(
            "alpha",
            [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
        )
        deadline = time.monotonic() + 10
        while "hello" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert child.process.poll() is not None, "child still running after the supervisor exited"
    assert "alpha      | hello" in out.getvalue()


def test_child_ignoring_sigterm_is_killed_after_grace():
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('up', flush=True); time.sleep(60)"
    )
    out = io.StringIO()
    sup = Supervisor(out=out, colour=False, grace_s=0.5)
    child = sup.start("stubborn", [sys.executable, "-c", code])
    sup.wait_until(child, lambda: "up" in out.getvalue(), timeout_s=10, poll_s=0.05)
    started = time.monotonic()
    sup.stop_all()
    assert child.process.returncode == -9
    assert time.monotonic() - started < 5


def test_wait_until_reports_a_crashed_child_with_its_last_lines():
    """CI shows only the exception: it must say why the service died, not only that it did."""
    sup = Supervisor(out=io.StringIO(), colour=False)
    code = "import sys; [print('line', i) for i in range(100)]; sys.exit('port 1234 is taken')"
    child = sup.start("crash", [sys.executable, "-c", code])
    with pytest.raises(RuntimeError, match="crash exited with code 1") as error:
        sup.wait_until(child, lambda: False, timeout_s=10)
    sup.stop_all()
    message = str(error.value)
    assert "port 1234 is taken" in message
    assert "line 99" in message
    assert "line 5\n" not in message, "the whole output, not its tail"


def test_free_ports_avoid_the_ephemeral_range_and_are_never_handed_out_twice():
    """Outgoing connections take ephemeral ports; a fixture binds its ports minutes later."""
    low, high = supervisor._ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(p < low for p in ports), (low, high, max(ports))


@pytest.mark.integration
def test_http_and_tcp_probes():
    port = free_port()
    assert not tcp_open("127.0.0.1", port)
    assert not http_ok(f"http://127.0.0.1:{port}/")
    out = io.StringIO()
    with Supervisor(out=out, colour=False, grace_s=2) as sup:
        argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        child = sup.start("web", argv)
        sup.wait_until(child, lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout_s=20)
        assert tcp_open("127.0.0.1", port)


def test_a_sigterm_to_the_supervising_process_stops_its_children(tmp_path):
    """`timeout make demo` or a closed terminal: the services must not outlive the demo."""
    import os
    import signal
    import subprocess

    pid_file = tmp_path / "child.pid"
    script = (
        "import sys, time\n"
        "from fashionrec_testing.supervisor import Supervisor\n"
        "with Supervisor(grace_s=2) as sup:\n"
        "    child = sup.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child.process.pid))\n"
        "    try:\n"
        "        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        print('stopping', flush=True)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    out, _ = parent.communicate(timeout=20)
    assert parent.returncode == 0 and "stopping" in out
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
