--- mcp_auth: Neovim client of mcp-auth-sidecar (OAuth for remote MCP servers).
---
--- Public API (also documented in :help mcp_auth-api). Every callback is
--- cb(err, result): err is nil or { code, message, data } (tostring(err) is
--- the message), result the value.
---   setup(opts), statusline(opts), highlight(), status(), refresh(cb),
---   token(server, cb, opts), headers(server, cb, opts), token_sync(server, timeout_ms),
---   headers_sync(server, timeout_ms),
---   authorize(server, cb, opts), complete_authorization(server, url, cb),
---   logout(server, cb, opts), handle_challenge(server, status, www_authenticate, cb),
---   cancel(server), pending_url(server), servers(), request(method, params, cb),
---   stop(), restart()
local config = require('mcp_auth.config')
local sidecar = require('mcp_auth.sidecar')
local status = require('mcp_auth.status')

local M = {}

--- Error codes (docs/protocol.md#errors).
M.errors = {
  AuthorizationRequired = 1001,
  AuthorizationFailed = 1002,
  DiscoveryFailed = 1003,
  StorageUnavailable = 1004,
  Timeout = 1005,
  InsecureUrl = 1006,
  Unavailable = 1007,
  RequestCancelled = -32800,
  InvalidParams = -32602,
  SidecarUnavailable = require('mcp_auth.rpc').PROCESS_EXITED,
}

---@class mcp_auth.Error
---@field code integer JSON-RPC error code (M.errors)
---@field message string what happened, for a human
---@field data any the error's data (often a ServerStatus)

local pending_urls = {} ---@type table<string, string>
local start_for_status -- forward
local inflight = {} ---@type table<string, table>  server -> authorize request handle

local function noop() end

local function check(name, value, expected)
  if type(value) ~= expected then
    error(('mcp_auth: %s must be a %s, got %s'):format(name, expected, type(value)), 3)
  end
end

local function is_status(v)
  return type(v) == 'table' and type(v.server) == 'string' and type(v.state) == 'string'
end

--- A one-line human message for a JSON-RPC error object.
---@param err mcp_auth.RpcError
---@return string
function M.format_error(err)
  if type(err) ~= 'table' then
    return tostring(err)
  end
  local msg = tostring(err.message or 'unknown error')
  if err.code == M.errors.AuthorizationFailed and type(err.data) == 'table' and err.data.error then
    if not msg:find(err.data.error, 1, true) then
      msg = ('%s (%s)'):format(msg, err.data.error)
    end
  end
  return msg
end

local error_mt = {
  __tostring = function(e)
    return e.message
  end,
}

--- The error object given to callbacks: the JSON-RPC error's code and data,
--- and a human message; tostring(err) is the message.
---@param err mcp_auth.RpcError|table
---@return mcp_auth.Error
function M.error(err)
  return setmetatable({ code = err.code, message = M.format_error(err), data = err.data }, error_mt)
end

--- Wraps a sidecar request: keeps the status cache in step with results and
--- errors that carry a ServerStatus; calls cb(err, value, extra) where
--- value, extra = on_result(result).
local function call(method, params, on_result, cb)
  cb = cb or noop
  return sidecar.request(method, params, function(err, result)
    if err then
      if is_status(err.data) then
        status.update(err.data)
      end
      cb(M.error(err), nil)
      return
    end
    local ok, value, extra = pcall(on_result, result)
    if not ok then
      cb(M.error({ code = -32603, message = 'unexpected answer from mcp-auth-sidecar: ' .. tostring(value) }), nil)
      return
    end
    cb(nil, value, extra)
  end)
end

---------------------------------------------------------------------------
-- Notifications from the sidecar
---------------------------------------------------------------------------

sidecar.on('mcp/authStatusChanged', function(params)
  status.update(params)
end)

sidecar.on('$/mcpAuth/down', function()
  status.set_down(true)
end)

sidecar.on('mcp/authorizationPending', function(params)
  if type(params) ~= 'table' or type(params.url) ~= 'string' then
    return
  end
  local server, url = tostring(params.server), params.url
  pending_urls[server] = url
  -- Registers are the user's: the URL goes into one only when asked
  -- (copy_url, or :McpAuth copy).
  local copied = M.copy_url(server, config.options.copy_url or nil)
  if config.options.notify_pending ~= false then
    vim.notify(
      ('mcp_auth: authorize %s in your browser:\n%s\n(%s If your browser runs on another machine, '
        .. 'open the URL there; if the final page does not load, copy its address and run :McpAuth paste %s)'):format(
        server,
        url,
        copied and ('Copied to the %s register.'):format(copied) or (':McpAuth copy %s copies it.'):format(server),
        server
      ),
      vim.log.levels.INFO,
      { title = 'mcp_auth' }
    )
  end
end)

sidecar.on('window/showMessage', function(params)
  if type(params) ~= 'table' or type(params.message) ~= 'string' then
    return
  end
  local levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }
  vim.notify('mcp-auth-sidecar: ' .. params.message, levels[params.type] or vim.log.levels.INFO)
end)

-- Every (re)started sidecar: learn the state of every server (probe is
-- bounded by a short timeout in the sidecar) so the status line is truthful.
sidecar.on_ready(function()
  status.set_down(false)
  status.expect(#config.server_names())
  sidecar.request('mcp/authStatus', { probe = true }, function(err, result)
    if not err and result and result.servers then
      status.replace(result.servers)
    end
  end)
end)

vim.api.nvim_create_autocmd('VimLeavePre', {
  group = vim.api.nvim_create_augroup('mcp_auth_exit', { clear = true }),
  callback = function()
    sidecar.stop(500)
  end,
})

---------------------------------------------------------------------------
-- Setup
---------------------------------------------------------------------------

local rendered = false -- a status-line component asked for the status

--- Starts the sidecar (without blocking: scheduled) so that the status line
--- fills in; until the first answer, servers given to setup() show as
--- "unknown" ("MCP ?"), never as a blank.
start_for_status = function()
  if sidecar.phase() == 'running' or sidecar.phase() == 'starting' then
    return
  end
  if #status.list() == 0 then
    status.expect(#config.server_names())
  end
  vim.schedule(function()
    if sidecar.phase() == 'stopped' then
      sidecar.ensure()
    end
  end)
end

--- The first status-line render starts the sidecar (autostart = "statusline",
--- the default): a component that shows the state of configured servers is
--- the one thing that needs it before any command.
local function on_render()
  if rendered then
    return
  end
  rendered = true
  if config.options.autostart == 'statusline' then
    start_for_status()
  end
end

--- Configures the plugin. Optional: without it the defaults are used.
--- Unknown keys and bad values are reported with vim.notify and ignored.
---@param opts? mcp_auth.Options
function M.setup(opts)
  config.set(opts)
  require('mcp_auth.highlights').setup()
  if sidecar.phase() ~= 'stopped' then
    -- new options only take effect in a new process
    sidecar.stop(1000)
    status.clear()
    pending_urls = {}
    inflight = {}
  end
  if config.options.autostart == true or (rendered and config.options.autostart == 'statusline') then
    start_for_status()
  end
end

---------------------------------------------------------------------------
-- Status
---------------------------------------------------------------------------

--- Short status-line text from the cache (never a request). See
--- :help mcp_auth-statusline for the strings.
---@param opts? { highlight?: boolean } highlight: wrap in %#McpAuth…# groups
---@return string
function M.statusline(opts)
  on_render()
  return status.statusline(opts)
end

--- Highlight group matching statusline(): McpAuthOk/Warn/Error/Info.
---@return string
function M.highlight()
  on_render()
  return status.highlight()
end

--- Cached ServerStatus list (or one server's status), no request.
---@param server? string
---@return mcp_auth.ServerStatus[]|mcp_auth.ServerStatus|nil
function M.status(server)
  if server then
    local s = status.get(server)
    return s and vim.deepcopy(s) or nil
  end
  return status.list()
end

--- mcp/authStatus (probe = true unless opts.probe == false); refreshes the
--- cache. cb(err, servers).
---@param cb? fun(err: mcp_auth.Error?, servers: mcp_auth.ServerStatus[]?)
---@param opts? { server?: string, probe?: boolean }
function M.refresh(cb, opts)
  opts = opts or {}
  local params = { probe = opts.probe ~= false, server = opts.server }
  return call('mcp/authStatus', params, function(result)
    local list = result and result.servers or {}
    if opts.server then
      for _, s in ipairs(list) do
        status.update(s)
      end
    else
      status.replace(list)
    end
    return list
  end, cb)
end

--- Names of known servers: those in the cache plus those given to setup().
---@return string[]
function M.servers()
  local seen, names = {}, {}
  for _, s in ipairs(status.list()) do
    seen[s.server] = true
    table.insert(names, s.server)
  end
  for _, n in ipairs(config.server_names()) do
    if not seen[n] then
      table.insert(names, n)
    end
  end
  table.sort(names)
  return names
end

--- The last authorization URL announced for `server` (mcp/authorizationPending).
---@param server string
---@return string?
function M.pending_url(server)
  return pending_urls[server]
end

--- Copies the pending authorization URL of `server` into `register` (when
--- nil: nothing is copied). "+" and "*" need a clipboard provider.
---@param server string
---@param register? string
---@return string? register the register written, nil when none
function M.copy_url(server, register)
  local url = pending_urls[server]
  if not url or not register then
    return nil
  end
  if (register == '+' or register == '*') and vim.fn.has('clipboard') ~= 1 then
    return nil
  end
  if pcall(vim.fn.setreg, register, url) then
    return register
  end
  return nil
end

---------------------------------------------------------------------------
-- Tokens (API for other plugins)
---------------------------------------------------------------------------

--- A currently valid access token for `server` (refreshed by the sidecar when
--- it expires within opts.min_validity seconds, default 60).
--- cb(err, token, result): result is the whole mcp/accessToken result
--- (err.code 1001: authorization required).
---@param server string
---@param cb fun(err: mcp_auth.Error?, token: string?, result: table?)
---@param opts? { min_validity?: integer }
function M.token(server, cb, opts)
  check('server', server, 'string')
  check('cb', cb, 'function')
  opts = opts or {}
  return call('mcp/accessToken', { server = server, minValiditySeconds = opts.min_validity }, function(result)
    assert(type(result) == 'table' and type(result.accessToken) == 'string', 'no accessToken in result')
    return result.accessToken, result
  end, cb)
end

--- HTTP headers for an MCP request: cb(err, { Authorization = "Bearer …" }, result).
---@param server string
---@param cb fun(err: mcp_auth.Error?, headers: table<string,string>?, result: table?)
---@param opts? { min_validity?: integer }
function M.headers(server, cb, opts)
  check('server', server, 'string')
  check('cb', cb, 'function')
  return M.token(server, function(err, token, result)
    if err then
      cb(err, nil)
      return
    end
    local scheme = (result and result.tokenType) or 'Bearer'
    cb(nil, { Authorization = scheme .. ' ' .. token }, result)
  end, opts)
end

--- Runs an async API function and waits (vim.wait) at most timeout_ms.
local function wait_for(fn, server, timeout_ms, opts)
  local done, value, err = false, nil, nil
  local handle = fn(server, function(e, v)
    done, err, value = true, e, v
  end, opts)
  if not vim.wait(timeout_ms or 10000, function()
    return done
  end, 10) then
    handle.cancel()
    return nil, M.error({ code = M.errors.Timeout, message = 'timed out waiting for mcp-auth-sidecar' })
  end
  return value, err
end

--- Blocking variant of token() for code that cannot take a callback; waits
--- at most timeout_ms (default 10000). Not for fast (luv) callbacks.
---@param server string
---@param timeout_ms? integer
---@param opts? { min_validity?: integer }
---@return string? token, mcp_auth.Error? err
function M.token_sync(server, timeout_ms, opts)
  check('server', server, 'string')
  return wait_for(M.token, server, timeout_ms, opts)
end

--- Blocking variant of headers(): returns { Authorization = "Bearer …" }, err.
---@param server string
---@param timeout_ms? integer
---@param opts? { min_validity?: integer }
---@return table<string,string>? headers, mcp_auth.Error? err
function M.headers_sync(server, timeout_ms, opts)
  check('server', server, 'string')
  return wait_for(M.headers, server, timeout_ms, opts)
end

--- Reports a 401/403 from the MCP server (mcp/handleChallenge).
--- cb(err, result) with result = { action = "retry"|"authorize"|"fail", status, scopes? }.
---@param server string
---@param http_status integer
---@param www_authenticate? string
---@param cb? fun(err: mcp_auth.Error?, result: table?)
function M.handle_challenge(server, http_status, www_authenticate, cb)
  return call(
    'mcp/handleChallenge',
    { server = server, status = http_status, wwwAuthenticate = www_authenticate },
    function(result)
      if result and is_status(result.status) then
        status.update(result.status)
      end
      return result
    end,
    cb
  )
end

---------------------------------------------------------------------------
-- Authorization
---------------------------------------------------------------------------

--- Runs the authorization flow (mcp/authorize; waits for the browser).
--- cb(err, status); err.code is -32800 when it was cancelled.
---@param server string
---@param cb? fun(err: mcp_auth.Error?, status: mcp_auth.ServerStatus?)
---@param opts? { scopes?: string[], force?: boolean }
function M.authorize(server, cb, opts)
  check('server', server, 'string')
  opts = opts or {}
  local handle
  handle = call('mcp/authorize', { server = server, scopes = opts.scopes, force = opts.force }, function(result)
    status.update(result)
    return result
  end, function(...)
    if inflight[server] == handle then
      inflight[server] = nil
    end
    ;(cb or noop)(...)
  end)
  inflight[server] = handle
  return handle
end

--- Whether this instance has an mcp/authorize request in flight for `server`.
function M.is_authorizing(server)
  return inflight[server] ~= nil
end

--- Cancels this instance's mcp/authorize request for `server` ($/cancelRequest).
---@return boolean cancelled
function M.cancel(server)
  local handle = inflight[server]
  if not handle then
    return false
  end
  inflight[server] = nil
  handle.cancel()
  return true
end

--- Completes a pending flow with the redirect URL copied from the browser
--- (mcp/completeAuthorization; SSH / headless use). cb(err, status).
---@param server string
---@param callback_url string
---@param cb? fun(err: mcp_auth.Error?, status: mcp_auth.ServerStatus?)
function M.complete_authorization(server, callback_url, cb)
  check('server', server, 'string')
  check('callback_url', callback_url, 'string')
  return call('mcp/completeAuthorization', { server = server, callbackUrl = vim.trim(callback_url) }, function(result)
    status.update(result)
    return result
  end, cb)
end

--- Logs out (mcp/logout; revokes unless opts.revoke == false). cb(err, result)
--- with result = { server, revoked, status }.
---@param server string
---@param cb? fun(err: mcp_auth.Error?, result: table?)
---@param opts? { revoke?: boolean }
function M.logout(server, cb, opts)
  check('server', server, 'string')
  opts = opts or {}
  return call('mcp/logout', { server = server, revoke = opts.revoke }, function(result)
    if result and is_status(result.status) then
      status.update(result.status)
    end
    pending_urls[server] = nil
    return result
  end, cb)
end

---------------------------------------------------------------------------
-- Low level
---------------------------------------------------------------------------

--- Raw request to the sidecar: cb(err, result) with the JSON-RPC error object
--- as the sidecar sent it.
---@param method string
---@param params any
---@param cb fun(err: table?, result: any)
function M.request(method, params, cb)
  return sidecar.request(method, params, cb)
end

--- Stops the sidecar (it starts again on next use).
function M.stop()
  sidecar.stop(1000)
end

--- Restarts the sidecar now.
function M.restart()
  sidecar.stop(1000)
  status.clear()
  start_for_status()
end

return M
