--- The one mcp-auth-sidecar process of this Neovim instance: started lazily
--- (first request, or first status-line render), initialized (LSP
--- lifecycle), restarted with a message when it dies, shut down when Neovim
--- exits. The connection itself is mcp_auth.rpc (vim.lsp.rpc).
local config = require('mcp_auth.config')
local rpc_mod = require('mcp_auth.rpc')

local M = {}

local MAX_RESTARTS = 3 -- within RESTART_WINDOW_MS; then give up until next use
local RESTART_WINDOW_MS = 60 * 1000
local LOG_LINES = 1000

---@type mcp_auth.Rpc?
local rpc = nil
---@type "stopped"|"starting"|"running"|"failed"
local phase = 'stopped'
local stopping = false
---@type { method: string, params: any, cb: fun(err, result), handle: table }[]
local queue = {}
local restarts = {} ---@type integer[] times (ms) of automatic restarts
local programs = {} ---@type table<string, boolean> cmd[1] of every process started
local log_offset = nil ---@type integer? size of the LSP log before the first start
local listeners = {} ---@type table<string, fun(params: any)[]>
local ready_hooks = {} ---@type fun()[]
local last_error = nil ---@type string?

M.server_info = nil ---@type table?  initialize result
M.last_exit = nil ---@type { code: integer, signal: integer }?

local function now_ms()
  return vim.uv.now()
end

--- The sidecar's recent stderr output (its log), as vim.lsp.rpc recorded it
--- in the LSP log; the last `LOG_LINES` lines of this Neovim's processes.
---@return string[] lines, string path the LSP log
function M.log_lines()
  local lines, path = rpc_mod.stderr_lines(programs, log_offset)
  if #lines > LOG_LINES then
    lines = vim.list_slice(lines, #lines - LOG_LINES + 1, #lines)
  end
  return lines, path
end

local function stderr_tail(n)
  local lines = M.log_lines()
  return table.concat(vim.list_slice(lines, math.max(1, #lines - n + 1), #lines), '\n')
end

--- Registers a handler for a notification from the sidecar.
---@param method string
---@param fn fun(params: any)
function M.on(method, fn)
  listeners[method] = listeners[method] or {}
  table.insert(listeners[method], fn)
end

--- Runs `fn` every time a (re)started sidecar finished `initialize`.
---@param fn fun()
function M.on_ready(fn)
  table.insert(ready_hooks, fn)
end

local function on_notification(method, params)
  for _, fn in ipairs(listeners[method] or {}) do
    local ok, err = pcall(fn, params)
    if not ok then
      vim.notify(('mcp_auth: handler for %s failed: %s'):format(method, err), vim.log.levels.ERROR)
    end
  end
end

local function is_openable(uri)
  if type(uri) ~= 'string' then
    return false
  end
  return uri:match('^https://') ~= nil or uri:match('^http://') ~= nil
end

--- Over SSH without a forwarded display there is no browser on this machine:
--- the user opens the URL from mcp/authorizationPending on their own machine.
local function remote_without_display()
  if vim.fn.has('mac') == 1 or vim.fn.has('win32') == 1 then
    return false
  end
  local ssh = (vim.env.SSH_CONNECTION or vim.env.SSH_TTY or '') ~= ''
  local display = (vim.env.DISPLAY or vim.env.WAYLAND_DISPLAY or '') ~= ''
  return ssh and not display
end

--- server -> client requests
local function on_request(method, params)
  if method == 'window/showDocument' then
    params = params or {}
    local uri = params.uri
    if not is_openable(uri) or remote_without_display() then
      return { success = false }
    end
    local ok, obj, err = pcall(vim.ui.open, uri)
    if not ok or (obj == nil and err) then
      vim.notify(
        ('mcp_auth: could not open a browser (%s); open the URL yourself:\n%s'):format(
          tostring(ok and err or obj),
          uri
        ),
        vim.log.levels.WARN
      )
      return { success = false }
    end
    return { success = true }
  end
  return nil, { code = -32601, message = 'method not found: ' .. tostring(method) }
end

local function fail_queue(err)
  local q = queue
  queue = {}
  for _, item in ipairs(q) do
    if not item.handle.cancelled then
      pcall(item.cb, err, nil)
    end
  end
end

local function send(item)
  if item.handle.cancelled then
    return
  end
  local id = rpc:request(item.method, item.params, item.cb)
  item.handle.id = id
  item.handle.rpc = rpc
end

local function flush_queue()
  local q = queue
  queue = {}
  for _, item in ipairs(q) do
    send(item)
  end
end

local start -- forward

local function on_exit(this, code, signal)
  if this ~= rpc then
    return -- an older process we already replaced
  end
  rpc = nil
  M.server_info = nil
  M.last_exit = { code = code, signal = signal }
  if stopping then
    phase = 'stopped'
    stopping = false
    fail_queue({ code = rpc_mod.PROCESS_EXITED, message = 'mcp-auth-sidecar was stopped' })
    return
  end
  local cutoff = now_ms() - RESTART_WINDOW_MS
  restarts = vim.tbl_filter(function(t)
    return t >= cutoff
  end, restarts)
  local what = ('mcp-auth-sidecar exited unexpectedly (code %d, signal %d)'):format(code or -1, signal or 0)
  local tail = stderr_tail(5)
  if tail ~= '' then
    what = what .. '; last output:\n' .. tail
  end
  if #restarts < MAX_RESTARTS then
    table.insert(restarts, now_ms())
    vim.notify('mcp_auth: ' .. what .. '\nRestarting it.', vim.log.levels.WARN)
    phase = 'stopped'
    start()
  else
    phase = 'failed'
    last_error = what
    vim.notify(
      'mcp_auth: '
        .. what
        .. ('\nIt exited %d times within a minute; not restarting now. The next :McpAuth command or API call starts it again (:McpAuth log shows its output).'):format(
          #restarts + 1
        ),
      vim.log.levels.ERROR
    )
    fail_queue({ code = rpc_mod.PROCESS_EXITED, message = what })
    on_notification('$/mcpAuth/down', {})
  end
end

local function initialize_params()
  local cwd = vim.fn.getcwd()
  local root = vim.uri_from_fname(cwd)
  local v = vim.version()
  return {
    processId = vim.fn.getpid(),
    clientInfo = { name = 'Neovim', version = ('%d.%d.%d'):format(v.major, v.minor, v.patch) },
    rootUri = root,
    workspaceFolders = { { uri = root, name = vim.fs.basename(cwd) } },
    capabilities = {
      window = { showDocument = { support = true } },
    },
    initializationOptions = config.init_options(),
  }
end

start = function()
  local cmd = require('mcp_auth.binary').cmd()
  if vim.fn.executable(cmd[1]) ~= 1 then
    phase = 'failed'
    last_error = ('sidecar command not found: %s (run the plugin\'s build.sh, install mcp-auth-sidecar on $PATH or set opts.cmd)'):format(cmd[1])
    fail_queue({ code = rpc_mod.PROCESS_EXITED, message = last_error })
    on_notification('$/mcpAuth/down', {})
    return
  end
  phase = 'starting'
  if not log_offset then
    local stat = vim.uv.fs_stat(vim.lsp.log.get_filename())
    log_offset = stat and stat.size or 0
  end
  programs[cmd[1]] = true
  local this
  local r, err = rpc_mod.start(cmd, {
    env = config.env(),
    handlers = {
      notification = on_notification,
      request = on_request,
      exit = function(code, signal)
        on_exit(this, code, signal)
      end,
    },
  })
  if not r then
    phase = 'failed'
    last_error = ('could not start %s: %s'):format(cmd[1], err)
    fail_queue({ code = rpc_mod.PROCESS_EXITED, message = last_error })
    on_notification('$/mcpAuth/down', {})
    return
  end
  this = r
  rpc = r
  r:request('initialize', initialize_params(), function(ierr, result)
    if rpc ~= r then
      return
    end
    if ierr then
      last_error = ('initialize failed: %s (code %s)'):format(tostring(ierr.message), tostring(ierr.code))
      if ierr.code ~= rpc_mod.PROCESS_EXITED then
        vim.notify('mcp_auth: ' .. last_error, vim.log.levels.ERROR)
        fail_queue(ierr)
        phase = 'failed'
        stopping = true
        r:terminate()
      end
      return
    end
    local caps = result and result.capabilities or {}
    local mcp = caps.experimental and caps.experimental.mcpAuth
    local want = require('mcp_auth.binary').PROTOCOL_VERSION
    if not (mcp and mcp.version == want) then
      vim.notify(
        ('mcp_auth: the sidecar did not announce capabilities.experimental.mcpAuth.version = %d; continuing'):format(want),
        vim.log.levels.WARN
      )
    end
    M.server_info = result
    r:notify('initialized', vim.empty_dict())
    phase = 'running'
    last_error = nil
    flush_queue()
    for _, fn in ipairs(ready_hooks) do
      local ok, e = pcall(fn)
      if not ok then
        vim.notify('mcp_auth: ' .. tostring(e), vim.log.levels.ERROR)
      end
    end
  end)
end

--- Starts the sidecar when it is not running.
function M.ensure()
  if phase == 'stopped' or phase == 'failed' then
    if phase == 'failed' then
      restarts = {}
    end
    start()
  end
end

--- Sends a request, starting the sidecar if needed; `cb(err, result)` runs on
--- the main loop. Returns a handle with `:cancel()`.
---@param method string
---@param params any
---@param cb fun(err: mcp_auth.RpcError?, result: any)
function M.request(method, params, cb)
  local handle = {}
  local item = { method = method, params = params, cb = cb, handle = handle }
  function handle.cancel()
    if handle.cancelled then
      return
    end
    handle.cancelled = true
    if handle.id and handle.rpc and not handle.rpc:is_closed() then
      -- the callback gets the answer or -32800 (mcp_auth.rpc)
      handle.rpc:cancel(handle.id)
    elseif not handle.id then
      -- still queued (the sidecar is starting): never sent, answered here
      vim.schedule(function()
        cb({ code = rpc_mod.REQUEST_CANCELLED, message = 'request cancelled' }, nil)
      end)
    end
  end
  M.ensure()
  if phase == 'running' then
    send(item)
  elseif phase == 'starting' then
    table.insert(queue, item)
  else
    vim.schedule(function()
      cb({ code = rpc_mod.PROCESS_EXITED, message = last_error or 'mcp-auth-sidecar is not running' }, nil)
    end)
  end
  return handle
end

--- Shuts the sidecar down: `shutdown`, then — once short requests still in
--- flight (logout, token, …; not a browser flow) are answered — `exit`.
--- Waits at most `timeout_ms` (default 1000) in all, then SIGTERM (the
--- sidecar still finishes a refresh in progress), then SIGKILL.
---@param timeout_ms? integer
function M.stop(timeout_ms)
  local r = rpc
  if not r then
    phase = 'stopped'
    return
  end
  timeout_ms = timeout_ms or 1000
  stopping = true
  local deadline = vim.uv.now() + timeout_ms
  local function gone()
    return rpc ~= r
  end
  if phase == 'running' then
    local shut = false
    r:request('shutdown', nil, function()
      shut = true
    end)
    vim.wait(timeout_ms, function()
      return shut and r:pending({ ['mcp/authorize'] = true }) == 0 or gone()
    end, 10)
    r:notify('exit', nil)
  end
  vim.wait(math.max(deadline - vim.uv.now(), 100), gone, 10)
  if not gone() then
    r:terminate()
    vim.wait(500, gone, 10)
  end
  if not gone() then
    r:kill()
    vim.wait(500, gone, 10)
  end
  if not gone() then
    -- the exit callback did not run (e.g. called from VimLeave): forget it
    rpc = nil
    phase = 'stopped'
    stopping = false
  end
end

---@return "stopped"|"starting"|"running"|"failed"
function M.phase()
  return phase
end

---@return integer?
function M.pid()
  return rpc and rpc.pid or nil
end

---@return string?
function M.last_error()
  return last_error
end

return M
