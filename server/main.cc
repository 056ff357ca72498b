// idemd: the idem daemon. See README.md and docs/PROTOCOL.md.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "server/config.h"
#include "server/logging.h"
#include "server/server.h"

int main(int argc, char** argv) {
  using namespace idem::server;
  try {
    Config config;
    ParseAction action = ParseAction::kRun;
    std::string output;
    idem::Status st = ParseConfig(argc, argv, &config, &action, &output);
    if (!st.ok()) {
      std::fprintf(stderr, "idemd: %s\n", st.message().c_str());
      return 2;
    }
    if (action == ParseAction::kPrintAndExit) {
      std::fputs(output.c_str(), stdout);
      return 0;
    }
    st = SetUpLogging(config.log_format, config.log_level);
    if (!st.ok()) {
      std::fprintf(stderr, "idemd: %s\n", st.message().c_str());
      return 2;
    }
    std::unique_ptr<Server> server;
    st = Server::Create(config, &server);
    if (!st.ok()) {
      std::fprintf(stderr, "idemd: %s\n", st.message().c_str());
      return 2;
    }
    return server->Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "idemd: fatal: %s\n", e.what());
    return 1;
  }
}
