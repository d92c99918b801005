"""The system emulator: command line, run state, machine start-up."""
