--- Which mcp-auth-sidecar the plugin runs, and what version it reports.
---
--- Order: setup({ cmd = … }) when given (the user's deliberate choice), then
--- the binary the build step put into the plugin's own folder
--- (<plugin>/bin/mcp-auth-sidecar, see build.sh), then mcp-auth-sidecar on
--- $PATH.
local M = {}

--- The editor protocol version this plugin speaks: the sidecar announces its
--- own as `capabilities.experimental.mcpAuth.version` in the initialize
--- result and as `(protocol N)` in `mcp-auth-sidecar --version`.
M.PROTOCOL_VERSION = 1

M.NAME = 'mcp-auth-sidecar'

local function is_windows()
  return vim.fn.has('win32') == 1
end

--- The plugin's root folder (the one holding lua/, plugin/ and bin/).
---@return string
function M.plugin_root()
  local source = debug.getinfo(1, 'S').source:sub(2)
  -- <root>/lua/mcp_auth/binary.lua
  return vim.fs.dirname(vim.fs.dirname(vim.fs.dirname(vim.fn.fnamemodify(source, ':p'))))
end

--- Where the build step puts the binary.
---@param root? string plugin root (default: this plugin's)
---@param windows? boolean (default: this platform)
---@return string
function M.bundled_path(root, windows)
  if windows == nil then
    windows = is_windows()
  end
  return (root or M.plugin_root()) .. '/bin/' .. M.NAME .. (windows and '.exe' or '')
end

---@class mcp_auth.Resolved
---@field cmd string[]? the command to run (nil: nothing found)
---@field path string? the executable's full path, when found
---@field source "setup"|"bundled"|"PATH"|nil where it came from
---@field bundled string the bundled path that was looked at

--- Resolves the sidecar command. Pure apart from the injected lookups.
---@param opts { cmd: string[]?, root: string?, windows: boolean?, executable: (fun(path: string): boolean)?, exepath: (fun(name: string): string)? }
---@return mcp_auth.Resolved
function M.resolve(opts)
  opts = opts or {}
  local executable = opts.executable or function(p)
    return vim.fn.executable(p) == 1
  end
  local exepath = opts.exepath or function(name)
    return vim.fn.exepath(name)
  end
  local bundled = M.bundled_path(opts.root, opts.windows)
  if opts.cmd then
    local found = exepath(opts.cmd[1])
    return { cmd = opts.cmd, path = found ~= '' and found or nil, source = 'setup', bundled = bundled }
  end
  if executable(bundled) then
    return { cmd = { bundled }, path = bundled, source = 'bundled', bundled = bundled }
  end
  local found = exepath(M.NAME)
  if found ~= '' then
    return { cmd = { found }, path = found, source = 'PATH', bundled = bundled }
  end
  return { cmd = nil, path = nil, source = nil, bundled = bundled }
end

--- The command for the current options (setup's cmd, bundled, PATH). When
--- nothing is found, { 'mcp-auth-sidecar' }, so errors name the program.
---@return string[] cmd, mcp_auth.Resolved resolved
function M.cmd()
  local r = M.resolve({ cmd = require('mcp_auth.config').options.cmd })
  return r.cmd or { M.NAME }, r
end

--- Parses `mcp-auth-sidecar --version` output: "mcp-auth-sidecar 0.1.0 (protocol 1)".
--- protocol is nil for binaries that predate the protocol number.
---@param text string
---@return { version: string?, protocol: integer? }
function M.parse_version(text)
  local version = text:match('^%s*mcp%-auth%-sidecar%s+([^%s]+)')
  local protocol = text:match('%(protocol%s+(%d+)%)')
  return { version = version, protocol = protocol and tonumber(protocol) or nil }
end

return M
