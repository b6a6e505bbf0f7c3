"""Pieces of the stand-in launcher (`stack.launcher`): the plan of ports and links, the
state file, process identity checks and the crash supervisor. Each module has one job so
that the launcher itself reads as the start-up sequence and nothing else."""
