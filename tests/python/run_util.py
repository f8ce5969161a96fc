"""Running the project's programs from the Python tests."""
import subprocess


def run(args, **kwargs):
    """Runs a program (arguments of any type, as strings) and returns its stdout; raises
    AssertionError with its output when it exits non-zero."""
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
