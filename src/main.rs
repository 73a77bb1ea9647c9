use std::process::ExitCode;

fn main() -> ExitCode {
    mcp_auth_sidecar::logging::init();
    mcp_auth_sidecar::cli::main()
}
