"""The checks of tests/test_tiers.py on what tests/vm/inside.sh wrote in the virtual machine."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.test_tiers import check  # noqa: E402

out = Path(sys.argv[1])
print((out / "machine.txt").read_text())
for name in ("root", "user"):
    try:
        report = json.loads((out / f"{name}.json").read_text().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        sys.exit(f"{name}: no report; {out}/{name}.err and {out}/console.log say why:\n"
                 + (out / f"{name}.err").read_text(errors="replace")[-2000:])
    print(name, json.dumps(report, indent=1))
    assert report["mechanism"] == "cgroup v2", report["describe"]
    check(report, victim=False)
    print(f"{name}: cgroup v2 tier passed")
