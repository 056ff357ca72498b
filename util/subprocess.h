// Child processes for tests and tools: spawn with output to a log file, and
// wait with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace idem {

// Starts args[0] (a path) with `args`, stdin from /dev/null, stdout and
// stderr appended to `log_path`. Returns the pid, or -1 with *error (errno
// style, may be null) set.
pid_t SpawnWithLog(const std::vector<std::string>& args, const std::string& log_path,
                   int* error = nullptr);

// waitpid with a deadline: the exit status, 128 + the signal when killed by
// one, or -1 on timeout or error.
int WaitExit(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace idem
