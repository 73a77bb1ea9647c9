--- Cache of ServerStatus objects (docs/protocol.md#serverstatus), fed by mcp/authStatusChanged
--- notifications and by request results; the status line reads only this.
local M = {}

---@class mcp_auth.ServerStatus
---@field server string
---@field url string
---@field state "unknown"|"not_required"|"unauthenticated"|"authorizing"|"authorized"|"refreshing"|"step_up_required"|"error"
---@field expiresAt? integer
---@field scopes string[]
---@field issuer? string
---@field storage "keyring"|"file"|"memory"
---@field message? string

---@type table<string, mcp_auth.ServerStatus>
local cache = {}
local down = false -- the sidecar died and is not being restarted
local expected = 0 -- servers configured in setup() whose state has not arrived yet
local redraw_pending = false

--- The status-line strings, by aggregate kind. Documented in :help mcp_auth-statusline.
M.labels = {
  none = '', -- no server configured (or autostart = false and nothing asked yet)
  ok = 'MCP ok',
  unknown = 'MCP ?',
  authorizing = 'MCP authorizing…',
  needs_auth = 'MCP needs auth',
  error = 'MCP error',
}

M.highlights = {
  none = 'McpAuthInfo',
  ok = 'McpAuthOk',
  unknown = 'McpAuthInfo',
  authorizing = 'McpAuthInfo',
  needs_auth = 'McpAuthWarn',
  error = 'McpAuthError',
}

--- What a single state means for the status line.
M.state_kind = {
  authorized = 'ok',
  refreshing = 'ok',
  not_required = 'ok',
  unknown = 'unknown',
  authorizing = 'authorizing',
  unauthenticated = 'needs_auth',
  step_up_required = 'needs_auth',
  error = 'error',
}

local priority = { error = 5, needs_auth = 4, authorizing = 3, unknown = 2, ok = 1 }

local function schedule_redraw()
  if redraw_pending then
    return
  end
  redraw_pending = true
  vim.schedule(function()
    redraw_pending = false
    pcall(vim.cmd, 'redrawstatus!')
  end)
end

local function fire(data)
  pcall(vim.api.nvim_exec_autocmds, 'User', {
    pattern = 'McpAuthStatusChanged',
    modeline = false,
    data = data,
  })
end

---@param status mcp_auth.ServerStatus
function M.update(status)
  if type(status) ~= 'table' or type(status.server) ~= 'string' then
    return
  end
  down = false
  local old = cache[status.server]
  cache[status.server] = status
  if not old or not vim.deep_equal(old, status) then
    schedule_redraw()
    fire(status)
  end
end

--- `n` servers are configured but their state has not arrived yet: while the
--- cache is empty the status line says "unknown" for them, not nothing.
---@param n integer
function M.expect(n)
  if expected ~= n then
    expected = n
    schedule_redraw()
  end
end

--- Replaces the whole cache with the result of an mcp/authStatus for all
--- servers (servers the sidecar no longer knows disappear).
---@param list mcp_auth.ServerStatus[]
function M.replace(list)
  expected = 0
  local seen = {}
  for _, s in ipairs(list or {}) do
    seen[s.server] = true
    M.update(s)
  end
  for name in pairs(cache) do
    if not seen[name] then
      cache[name] = nil
      schedule_redraw()
    end
  end
end

function M.set_down(value)
  if down ~= value then
    down = value
    schedule_redraw()
    fire({ down = value })
  end
end

function M.is_down()
  return down
end

function M.clear()
  cache = {}
  expected = 0
  schedule_redraw()
end

---@param name string
---@return mcp_auth.ServerStatus?
function M.get(name)
  return cache[name]
end

--- All cached statuses, sorted by server name (copies).
---@return mcp_auth.ServerStatus[]
function M.list()
  local out = {}
  for _, s in pairs(cache) do
    table.insert(out, vim.deepcopy(s))
  end
  table.sort(out, function(a, b)
    return a.server < b.server
  end)
  return out
end

--- The aggregate kind over all servers, and how many servers have it.
---@return string kind, integer count
function M.aggregate()
  if down then
    return 'error', 0
  end
  local kind, count = 'none', 0
  for _, s in pairs(cache) do
    local k = M.state_kind[s.state] or 'unknown'
    if kind == 'none' or priority[k] > priority[kind] then
      kind, count = k, 1
    elseif k == kind then
      count = count + 1
    end
  end
  if kind == 'none' and expected > 0 then
    return 'unknown', expected
  end
  return kind, count
end

--- The status-line text. Never talks to the sidecar.
---@param opts? { highlight?: boolean }
---@return string
function M.statusline(opts)
  local kind, count = M.aggregate()
  local text = M.labels[kind] or ''
  if text ~= '' and count > 1 and (kind == 'needs_auth' or kind == 'error') then
    text = ('%s (%d)'):format(text, count)
  end
  if text ~= '' and opts and opts.highlight then
    return ('%%#%s#%s%%*'):format(M.highlights[kind], (text:gsub('%%', '%%%%')))
  end
  return text
end

--- The highlight group matching statusline().
---@return string
function M.highlight()
  local kind = M.aggregate()
  return M.highlights[kind]
end

return M
