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
---@field autostart? "statusline"|boolean when the sidecar starts without a command: first status-line render (default), setup(), or never
---@field notify_pending? boolean notify the authorization URL (default true)
---@field copy_url? string|false register the authorization URL is copied to (default false: none)

M.defaults = {
  -- cmd: unset, see mcp_auth.binary (the plugin's bin/ folder, then $PATH)
  autostart = 'statusline',
  notify_pending = true,
  copy_url = false,
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

--- "a string", "a table", … for messages: the type, never the value.
local function a(v)
  local t = type(v)
  return (t == 'table' or t == 'number' or t == 'string' or t == 'boolean' or t == 'function' or t == 'userdata')
      and ('a ' .. t)
    or t
end

local enum = function(values)
  return function(v)
    return vim.tbl_contains(values, v), 'one of ' .. table.concat(values, ', ')
  end
end

--- ServerConfig keys (docs/protocol.md#initialization-options) -> validator.
--- Other keys are passed through (the sidecar ignores what it does not know).
local server_keys = {
  url = function(v)
    return type(v) == 'string' and v ~= '', 'a non-empty string (the MCP endpoint URL)'
  end,
  clientId = function(v)
    return type(v) == 'string', 'a string'
  end,
  clientSecret = function(v)
    return type(v) == 'string', 'a string'
  end,
  clientMetadataUrl = function(v)
    return type(v) == 'string', 'a string (URL)'
  end,
  authServerMetadataUrl = function(v)
    return type(v) == 'string', 'a string (URL)'
  end,
  resource = function(v)
    return type(v) == 'string', 'a string (URL)'
  end,
  scopes = function(v)
    return type(v) == 'table' and vim.islist(v) and vim.iter(v):all(function(x)
      return type(x) == 'string'
    end), 'a list of strings'
  end,
  callbackPort = function(v)
    return type(v) == 'number' and v == math.floor(v) and v >= 0 and v <= 65535, 'an integer from 0 to 65535'
  end,
}

local function path_of(parent, key)
  if type(key) == 'string' and key:match('^[%a_][%w_]*$') then
    return parent .. '.' .. key
  elseif type(key) == 'string' then
    return ('%s[%q]'):format(parent, key)
  end
  return ('%s[%s]'):format(parent, type(key) == 'number' and tostring(key) or a(key))
end

--- Validates `servers`: returns the entries that are usable and the
--- problems of the others (paths and what is accepted, never a value).
---@return table? servers, string[] problems
local function check_servers(v)
  if type(v) ~= 'table' then
    return nil, { ('option servers: expected a table { [name] = { url = "https://…" } }, got %s; ignored'):format(a(v)) }
  end
  local out, problems = {}, {}
  for name, entry in pairs(v) do
    local path = path_of('servers', name)
    if type(name) ~= 'string' then
      table.insert(problems, ('option %s: server names must be strings; entry ignored'):format(path))
    elseif type(entry) ~= 'table' then
      table.insert(problems, ('option %s: expected a table { url = "https://…", … }, got %s; server ignored'):format(path, a(entry)))
    else
      local bad = {}
      if entry.url == nil then
        table.insert(bad, ('option %s: url is required; server ignored'):format(path))
      end
      local keys = vim.tbl_keys(entry)
      table.sort(keys, function(x, y)
        return tostring(x) < tostring(y)
      end)
      for _, key in ipairs(keys) do
        local validate = server_keys[key]
        if validate then
          local ok, expected = validate(entry[key])
          if not ok then
            table.insert(
              bad,
              ('option %s: expected %s, got %s; server ignored'):format(path_of(path, key), expected, a(entry[key]))
            )
          end
        end
      end
      if #bad == 0 then
        out[name] = vim.deepcopy(entry)
      else
        vim.list_extend(problems, bad)
      end
    end
  end
  return out, problems
end

--- key -> validator(v) returning ok, expected
local validators = {
  cmd = function(v)
    return is_list_of_strings(v), 'a non-empty list of strings'
  end,
  storage = enum({ 'auto', 'keyring', 'file', 'memory' }),
  browser = function(v)
    return v == 'auto' or v == 'none' or is_list_of_strings(v), '"auto", "none" or a command list'
  end,
  config_files = function(v)
    return type(v) == 'table' and vim.islist(v) and vim.iter(v):all(function(x)
      return type(x) == 'string'
    end), 'a list of absolute paths'
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
    if type(v) ~= 'table' then
      return false, 'a table of environment variables'
    end
    for k, x in pairs(v) do
      if type(k) ~= 'string' or (type(x) ~= 'string' and type(x) ~= 'number') then
        return false, 'a table { NAME = "value" } of strings'
      end
    end
    return true
  end,
  log_level = function(v)
    return type(v) == 'string', 'a string (e.g. "info", "debug")'
  end,
  autostart = function(v)
    return v == 'statusline' or type(v) == 'boolean', '"statusline", true or false'
  end,
  notify_pending = function(v)
    return type(v) == 'boolean', 'a boolean'
  end,
  copy_url = function(v)
    return v == false or (type(v) == 'string' and v:match('^[%a"+*]$') ~= nil),
      'false or a register name ("+", "*", \'"\', a-z)'
  end,
}

---@type mcp_auth.Options
M.options = vim.deepcopy(M.defaults)
M.setup_called = false

--- Validates and stores the options. Problems are reported with vim.notify
--- (the option's path and what it accepts, never its value: it may be a
--- client secret) and the offending keys ignored; never raises.
---@param opts? mcp_auth.Options
---@return string[] problems
function M.set(opts)
  opts = opts or {}
  local problems = {}
  local result = vim.deepcopy(M.defaults)
  if type(opts) ~= 'table' then
    table.insert(problems, 'setup() expects a table, got ' .. a(opts))
    opts = {}
  end
  local unknown = {}
  for key, value in pairs(opts) do
    if key == 'servers' then
      local servers, server_problems = check_servers(value)
      result.servers = servers
      vim.list_extend(problems, server_problems)
    elseif not validators[key] then
      table.insert(unknown, type(key) == 'string' and key or a(key))
    else
      local ok, expected = validators[key](value)
      if ok then
        result[key] = vim.deepcopy(value)
      else
        table.insert(problems, ('option %s: expected %s, got %s; ignored'):format(key, expected, a(value)))
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
