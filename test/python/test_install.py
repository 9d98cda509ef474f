"""`make install` puts the package on Debian's Python path beside the binary: installed into a
scratch prefix, it imports from there (not from the build tree) and decides."""

import subprocess
import sys

from conftest import BUILD, ROOT


def test_installed_package_imports_and_decides(tmp_path, corpus):
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(tmp_path)], check=True,
                   capture_output=True)
    site = tmp_path / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "dist-packages"
    assert (site / "assent" / "__init__.py").exists() and list((site / "assent").glob("_core*.so"))
    assert (tmp_path / "bin" / "assent").exists()
    code = ("import assent, sys; s = assent.Snapshot(sys.argv[1]); "
            "print(assent.__file__); print(s.decide('content.chat', 'service.delivery').reason)")
    r = subprocess.run(["/usr/bin/python3", "-c", code, str(corpus["snapshot"])], cwd=tmp_path,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, check=True)
    where, reason = r.stdout.split()
    assert where.startswith(str(site)) and reason == "necessary"
