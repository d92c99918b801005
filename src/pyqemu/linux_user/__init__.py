"""Linux user-mode emulation: run Linux programs for another CPU (pyqemu-x86_64, pyqemu-i386)."""
