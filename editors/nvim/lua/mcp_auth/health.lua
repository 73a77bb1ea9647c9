--- :checkhealth mcp_auth
local M = {}

local health = vim.health

local function version_of(cmd)
  local ok, obj = pcall(vim.system, { cmd[1], '--version' }, { text = true })
  if not ok then
    return nil, tostring(obj)
  end
  local res = obj:wait(15000)
  if res.code ~= 0 then
    return nil, ('exit code %d: %s'):format(res.code, vim.trim((res.stderr or '') .. (res.stdout or '')))
  end
  return vim.trim(res.stdout or '')
end

function M.check()
  local config = require('mcp_auth.config')
  local sidecar = require('mcp_auth.sidecar')
  local mcp_auth = require('mcp_auth')
  local commands = require('mcp_auth.commands')

  health.start('mcp_auth: Neovim')
  local v = vim.version()
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
  else
    health.error('Neovim >= 0.10 is required')
  end
  if config.setup_called then
    health.ok("require('mcp_auth').setup() was called")
  else
    health.info("require('mcp_auth').setup() not called: defaults are used")
  end

  health.start('mcp_auth: sidecar binary')
  local binary = require('mcp_auth.binary')
  local cmd, found = binary.cmd()
  local exe = found.path
  if not exe then
    if found.source == 'setup' then
      health.error(('%s not found (the program of setup({ cmd }))'):format(cmd[1]), {
        "point setup({ cmd = { '/path/to/mcp-auth-sidecar' } }) at the binary,",
        'or remove opts.cmd to use the bundled binary or the one on $PATH',
      })
    else
      health.error(('mcp-auth-sidecar not found: neither %s nor on $PATH'):format(found.bundled), {
        'build it into the plugin: sh ' .. binary.plugin_root() .. '/build.sh (needs cargo)',
        'or install it on $PATH: cargo install --locked --path . in the repository',
        "or point setup({ cmd = { '/path/to/mcp-auth-sidecar' } }) at it",
      })
    end
    return
  end
  local from = ({
    setup = 'from setup({ cmd })',
    bundled = 'bundled with the plugin',
    PATH = 'on $PATH',
  })[found.source]
  health.ok(('found: %s (%s)'):format(exe, from))
  if found.source == 'setup' and vim.fn.executable(found.bundled) == 1 then
    health.info(('setup({ cmd }) is used instead of the bundled binary at %s'):format(found.bundled))
  elseif found.source == 'PATH' then
    health.info(('no bundled binary at %s (the build step puts one there)'):format(found.bundled))
  end
  local version, verr = version_of({ exe })
  if version then
    health.ok('version: ' .. version)
    local parsed = binary.parse_version(version)
    local want = binary.PROTOCOL_VERSION
    if parsed.protocol == want then
      health.ok(('protocol version %d, the same as the plugin'):format(want))
    else
      local advice = {
        found.source == 'bundled' and ('rebuild it: sh ' .. binary.plugin_root() .. '/build.sh')
          or 'install the mcp-auth-sidecar of the same checkout as the plugin',
        'or update the plugin and the binary together',
      }
      if parsed.protocol then
        health.warn(
          ('protocol version mismatch: the binary speaks protocol %d, the plugin protocol %d'):format(
            parsed.protocol,
            want
          ),
          advice
        )
      else
        health.warn(
          ('the binary reports no protocol version (older than the plugin?); the plugin speaks protocol %d'):format(
            want
          ),
          advice
        )
      end
    end
  else
    health.error(('`%s --version` failed: %s'):format(exe, verr))
  end

  health.start('mcp_auth: sidecar process')
  local was = sidecar.phase()
  local servers, err, done = nil, nil, false
  mcp_auth.refresh(function(e, list)
    err, servers, done = e, list, true
  end)
  vim.wait(15000, function()
    return done
  end, 20)
  if not done then
    health.error('mcp-auth-sidecar did not answer mcp/authStatus within 15 s', { ':McpAuth log shows its output' })
    return
  end
  if err then
    health.error('mcp/authStatus failed: ' .. tostring(err), { ':McpAuth log shows its output' })
    return
  end
  local info = sidecar.server_info and sidecar.server_info.serverInfo
  health.ok(
    ('running (pid %s%s)%s'):format(
      tostring(sidecar.pid()),
      info and (', ' .. tostring(info.name) .. ' ' .. tostring(info.version)) or '',
      was == 'running' and '' or ', started for this check'
    )
  )
  local caps = sidecar.server_info and sidecar.server_info.capabilities or {}
  local announced = caps.experimental and caps.experimental.mcpAuth and caps.experimental.mcpAuth.version
  if announced ~= binary.PROTOCOL_VERSION then
    health.warn(
      ('the running sidecar announced protocol version %s in initialize, the plugin speaks %d'):format(
        tostring(announced),
        binary.PROTOCOL_VERSION
      )
    )
  end
  if sidecar.last_exit and sidecar.last_exit.code ~= 0 then
    health.warn(
      ('it exited before (code %d, signal %d) and was restarted'):format(
        sidecar.last_exit.code or -1,
        sidecar.last_exit.signal or 0
      )
    )
  end

  local lsp_log = vim.lsp.log
  local level = lsp_log.get_level()
  if level <= vim.log.levels.DEBUG then
    health.warn(
      ('the LSP log level is %s: vim.lsp.rpc writes every message to and from mcp-auth-sidecar, access tokens and client secrets included, to %s'):format(
        ({ [0] = 'TRACE', 'DEBUG' })[level] or tostring(level),
        lsp_log.get_filename()
      ),
      { "vim.lsp.set_log_level('warn') when you are done debugging, and delete that file's secret lines" }
    )
  elseif level > vim.log.levels.ERROR then
    health.info("the LSP log level is above ERROR: the sidecar's stderr (its log) is not kept; :McpAuth log will be empty")
  else
    health.ok(('the sidecar\'s log (stderr) goes to %s; :McpAuth log shows it'):format(lsp_log.get_filename()))
  end

  health.start('mcp_auth: storage')
  local requested = config.options.storage or 'auto (default)'
  local modes = {}
  for _, s in ipairs(servers or {}) do
    modes[s.storage] = true
  end
  local actual = vim.tbl_keys(modes)
  table.sort(actual)
  if #actual > 0 then
    health.ok(('storage: %s (requested: %s)'):format(table.concat(actual, ', '), requested))
    if modes.memory and config.options.storage ~= 'memory' then
      health.warn('tokens are kept in memory only and are lost when Neovim exits')
    end
  else
    health.info(('requested storage: %s (the mode in use is shown once a server is configured)'):format(requested))
  end

  health.start('mcp_auth: servers')
  if not servers or #servers == 0 then
    health.warn('no remote MCP servers configured', {
      "setup({ servers = { name = { url = 'https://…/mcp' } } })",
      'or an .mcp.json / .vscode/mcp.json / ~/.cursor/mcp.json file, see :help mcp_auth-servers',
    })
  end
  for _, s in ipairs(servers or {}) do
    local text = table.concat(commands.describe(s, { hint = false }), '\n')
    if s.state == 'authorized' or s.state == 'not_required' or s.state == 'refreshing' then
      health.ok(text)
    elseif s.state == 'error' then
      health.error(text, s.message and { s.message } or nil)
    elseif s.state == 'unauthenticated' or s.state == 'step_up_required' then
      health.warn(text, { ':McpAuth authorize ' .. s.server })
    else
      health.info(text)
    end
  end
  health.info('status line: ' .. vim.inspect(mcp_auth.statusline()))

  health.start('mcp_auth: remote use (SSH)')
  local reg = config.options.copy_url
  if vim.fn.has('clipboard') == 1 then
    health.ok(
      ('a clipboard provider exists: :McpAuth copy puts an authorization URL into the + register%s'):format(
        reg and (', and copy_url copies it to the ' .. reg .. ' register') or ''
      )
    )
  else
    health.info(
      ('no clipboard provider: authorization URLs are shown with vim.notify%s; :McpAuth copy puts one into a register'):format(
        reg and (' and copied to the ' .. reg .. ' register') or ''
      )
    )
  end
  if vim.env.SSH_CONNECTION or vim.env.SSH_TTY then
    health.info(
      'running over SSH: open the URL on your machine and finish with :McpAuth paste <server>; see :help mcp_auth-ssh'
    )
  end
end

return M
