--- Options of require('mcp_auth').setup() and the initializationOptions
--- derived from them.
local M = {}

---@class mcp_auth.Options
---@field cmd? string[] sidecar command (default: the plugin's bin/mcp-auth-sidecar, else mcp-auth-sidecar on $PATH)
---@field servers? table<string, table> ServerConfig per name (docs/protocol.md#initialization-options), passed through
---@field storage? "auto"|"keyring"|"file"|"memory"
---@field browser? "auto"|"none"|string[]
---@field config_files? string[] -> initializationOptions.configFiles
---@field discover_config_files? boolean -> initializationOptions.discoverConfigFiles
---@field callback_host? string -> initializationOptions.callbackHost
---@field authorization_timeout? integer seconds -> initializationOptions.authorizationTimeout
---@field env? table<string,string> extra environment for the sidecar process
---@field log_level? string MCP_AUTH_SIDECAR_LOG for the sidecar (tracing env-filter)
---@field autostart? boolean start the sidecar (and probe) right after setup()
---@field notify_pending? boolean notify the authorization URL (default true)

M.defaults = {
  -- cmd: unset, see mcp_auth.binary (the plugin's bin/ folder, then $PATH)
  autostart = false,
  notify_pending = true,
}

local function is_list_of_strings(v)
  if type(v) ~= 'table' or not vim.islist(v) or #v == 0 then
    return false
  end
  for _, x in ipairs(v) do
    if type(x) ~= 'string' then
      return false
    end
  end
  return true
end

local enum = function(values)
  return function(v)
    return vim.tbl_contains(values, v), 'one of ' .. table.concat(values, ', ')
  end
end

--- key -> validator(v) returning ok, expected
local validators = {
  cmd = function(v)
    return is_list_of_strings(v), 'a non-empty list of strings'
  end,
  servers = function(v)
    if type(v) ~= 'table' then
      return false, 'a table { [name] = { url = "…" } }'
    end
    for name, s in pairs(v) do
      if type(name) ~= 'string' or type(s) ~= 'table' or type(s.url) ~= 'string' then
        return false, 'a table { [name] = { url = "…" } } (bad entry ' .. tostring(name) .. ')'
      end
    end
    return true
  end,
  storage = enum({ 'auto', 'keyring', 'file', 'memory' }),
  browser = function(v)
    return v == 'auto' or v == 'none' or is_list_of_strings(v), '"auto", "none" or a command list'
  end,
  config_files = function(v)
    return type(v) == 'table' and vim.islist(v), 'a list of absolute paths'
  end,
  discover_config_files = function(v)
    return type(v) == 'boolean', 'a boolean'
  end,
  callback_host = function(v)
    return type(v) == 'string', 'a string'
  end,
  authorization_timeout = function(v)
    return type(v) == 'number' and v >= 1, 'a number of seconds >= 1'
  end,
  env = function(v)
    return type(v) == 'table', 'a table of environment variables'
  end,
  log_level = function(v)
    return type(v) == 'string', 'a string (e.g. "info", "debug")'
  end,
  autostart = function(v)
    return type(v) == 'boolean', 'a boolean'
  end,
  notify_pending = function(v)
    return type(v) == 'boolean', 'a boolean'
  end,
}

---@type mcp_auth.Options
M.options = vim.deepcopy(M.defaults)
M.setup_called = false

--- Validates and stores the options. Problems are reported with vim.notify and
--- the offending keys ignored; never raises.
---@param opts? mcp_auth.Options
---@return string[] problems
function M.set(opts)
  opts = opts or {}
  local problems = {}
  local result = vim.deepcopy(M.defaults)
  if type(opts) ~= 'table' then
    table.insert(problems, 'setup() expects a table, got ' .. type(opts))
    opts = {}
  end
  local unknown = {}
  for key, value in pairs(opts) do
    local validate = validators[key]
    if not validate then
      table.insert(unknown, tostring(key))
    else
      local ok, expected = validate(value)
      if ok then
        result[key] = vim.deepcopy(value)
      else
        table.insert(problems, ('option %s: expected %s, got %s; ignored'):format(key, expected, vim.inspect(value)))
      end
    end
  end
  if #unknown > 0 then
    table.sort(unknown)
    table.insert(problems, 'unknown option(s) ignored: ' .. table.concat(unknown, ', '))
  end
  M.options = result
  M.setup_called = true
  for _, p in ipairs(problems) do
    vim.notify('mcp_auth.setup: ' .. p, vim.log.levels.WARN)
  end
  return problems
end

--- initializationOptions for the sidecar (docs/protocol.md#initialization-options); unset keys are left out
--- so the sidecar's defaults apply.
---@return table
function M.init_options()
  local o = M.options
  local init = {}
  if o.servers then
    init.servers = next(o.servers) and vim.deepcopy(o.servers) or vim.empty_dict()
  end
  init.configFiles = o.config_files
  init.discoverConfigFiles = o.discover_config_files
  init.storage = o.storage
  init.browser = o.browser
  init.callbackHost = o.callback_host
  init.authorizationTimeout = o.authorization_timeout
  if next(init) == nil then
    return vim.empty_dict()
  end
  return init
end

--- Environment for the sidecar process (merged into Neovim's own).
---@return table<string,string>?
function M.env()
  local env = {}
  for k, v in pairs(M.options.env or {}) do
    env[k] = tostring(v)
  end
  if M.options.log_level then
    env.MCP_AUTH_SIDECAR_LOG = M.options.log_level
  end
  return next(env) and env or nil
end

--- Names of the servers configured through setup() (the sidecar may know more,
--- from config files).
---@return string[]
function M.server_names()
  local names = vim.tbl_keys(M.options.servers or {})
  table.sort(names)
  return names
end

return M
