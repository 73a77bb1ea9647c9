-- The plugin as installed by tests/install.sh: a fresh copy whose build step
-- put the binary into its bin/ folder. Checks how the plugin finds the
-- binary (setup's cmd, then bin/, then $PATH) and what :checkhealth says.
-- Env (from install.sh): MCP_TEST_PLUGIN (the copy's editors/nvim),
-- MCP_TEST_VERSION (the bundled binary's --version), MCP_TEST_URL (a loopback
-- MCP server that needs no authorization), MCP_TEST_DECOY (a fake
-- mcp-auth-sidecar on $PATH).
-- Last line: "N passed, M failed"; exit status 1 on any failure.

local PLUGIN = assert(os.getenv('MCP_TEST_PLUGIN'))
local VERSION = assert(os.getenv('MCP_TEST_VERSION'))
local URL = assert(os.getenv('MCP_TEST_URL'))
local DECOY = assert(os.getenv('MCP_TEST_DECOY'))

vim.opt.runtimepath:prepend(PLUGIN)
vim.cmd('runtime plugin/mcp_auth.lua')

local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'harness.lua')
local out, check = harness.out, harness.check

local binary = require('mcp_auth.binary')
local bundled = PLUGIN .. '/bin/mcp-auth-sidecar'

-- --- resolution order, as a table (the lookups are injected) --------------------------
local function lookups(executables, on_path)
  return function(p)
    return executables[p] == true
  end, function(name)
    if name:find('/', 1, true) then
      return executables[name] and name or ''
    end
    return on_path[name] or ''
  end
end
local cases = {
  {
    name = 'setup cmd wins over bundled and PATH',
    cmd = { '/opt/sc/mcp-auth-sidecar', '--stdio' },
    exe = { ['/p/bin/mcp-auth-sidecar'] = true, ['/opt/sc/mcp-auth-sidecar'] = true },
    path = { ['mcp-auth-sidecar'] = '/usr/bin/mcp-auth-sidecar' },
    want = { source = 'setup', cmd = { '/opt/sc/mcp-auth-sidecar', '--stdio' }, path = '/opt/sc/mcp-auth-sidecar' },
  },
  {
    name = 'setup cmd that does not exist is still the choice (and reported not found)',
    cmd = { '/nonexistent/mcp-auth-sidecar' },
    exe = { ['/p/bin/mcp-auth-sidecar'] = true },
    path = { ['mcp-auth-sidecar'] = '/usr/bin/mcp-auth-sidecar' },
    want = { source = 'setup', cmd = { '/nonexistent/mcp-auth-sidecar' }, path = nil },
  },
  {
    name = 'bundled before PATH',
    exe = { ['/p/bin/mcp-auth-sidecar'] = true },
    path = { ['mcp-auth-sidecar'] = '/usr/bin/mcp-auth-sidecar' },
    want = { source = 'bundled', cmd = { '/p/bin/mcp-auth-sidecar' }, path = '/p/bin/mcp-auth-sidecar' },
  },
  {
    name = 'PATH when nothing is bundled',
    exe = {},
    path = { ['mcp-auth-sidecar'] = '/usr/bin/mcp-auth-sidecar' },
    want = { source = 'PATH', cmd = { '/usr/bin/mcp-auth-sidecar' }, path = '/usr/bin/mcp-auth-sidecar' },
  },
  {
    name = 'nothing found',
    exe = {},
    path = {},
    want = { source = nil, cmd = nil, path = nil },
  },
  {
    name = 'Windows: bin/mcp-auth-sidecar.exe',
    windows = true,
    exe = { ['/p/bin/mcp-auth-sidecar.exe'] = true },
    path = {},
    want = { source = 'bundled', cmd = { '/p/bin/mcp-auth-sidecar.exe' }, path = '/p/bin/mcp-auth-sidecar.exe' },
  },
}
for _, c in ipairs(cases) do
  local executable, exepath = lookups(c.exe, c.path)
  local got = binary.resolve({
    cmd = c.cmd,
    root = '/p',
    windows = c.windows or false,
    executable = executable,
    exepath = exepath,
  })
  check(
    'resolve: ' .. c.name,
    got.source == c.want.source and vim.deep_equal(got.cmd, c.want.cmd) and got.path == c.want.path,
    got
  )
end

check(
  'parse_version: crate and protocol version',
  vim.deep_equal(binary.parse_version('mcp-auth-sidecar 0.1.0 (protocol 1)\n'), { version = '0.1.0', protocol = 1 })
)
check(
  'parse_version: no protocol (older binaries)',
  vim.deep_equal(binary.parse_version('mcp-auth-sidecar 0.0.9'), { version = '0.0.9' })
)
check(
  'the plugin root is the installed copy',
  vim.fn.resolve(binary.plugin_root()) == vim.fn.resolve(PLUGIN),
  { binary.plugin_root(), PLUGIN }
)
check('the build step left the binary in the plugin folder', vim.fn.executable(bundled) == 1, bundled)
local real = binary.parse_version(VERSION)
check(
  'the bundled binary speaks the plugin protocol',
  real.protocol == binary.PROTOCOL_VERSION,
  { VERSION, binary.PROTOCOL_VERSION }
)

-- --- :checkhealth ------------------------------------------------------------------------
require('mcp_auth').setup({
  servers = { ['local'] = { url = URL } },
  storage = 'memory',
  browser = 'none',
  discover_config_files = false,
})

local function checkhealth(label)
  local lines = harness.checkhealth(label)
  local function matching(word)
    return vim.tbl_filter(function(l)
      return l:find(word, 1, true) ~= nil
    end, lines)
  end
  return table.concat(lines, '\n'), matching('ERROR'), matching('WARNING')
end

local text, errors, warnings = checkhealth('bundled')
check('health: found the bundled binary', text:find('found: ' .. bundled .. ' (bundled with the plugin)', 1, true) ~= nil, text)
check('health: the bundled binary\'s version', text:find('version: ' .. VERSION, 1, true) ~= nil, text)
check('health: the protocol matches', text:find('protocol version 1, the same as the plugin', 1, true) ~= nil, text)
check('health: the sidecar runs from the bundled binary', require('mcp_auth.sidecar').phase() == 'running')
check('health: the server is listed', text:find('local', 1, true) ~= nil and text:find('not_required', 1, true) ~= nil, text)
check('health: no ERROR', #errors == 0, errors)
check('health: no WARNING', #warnings == 0, warnings)
check('health: the decoy on $PATH is not mentioned', text:find(DECOY, 1, true) == nil, text)

-- A binary with another protocol version in the same place: rename the real
-- one away (the running sidecar keeps it) and put a script there.
local real_path = bundled .. '.real'
assert(vim.uv.fs_rename(bundled, real_path))
local function fake(version_line)
  local f = assert(io.open(bundled, 'w'))
  f:write(
    ('#!/bin/sh\nif [ "$1" = --version ]; then echo %q; exit 0; fi\nexec %q "$@"\n'):format(version_line, real_path)
  )
  f:close()
  assert(vim.uv.fs_chmod(bundled, tonumber('755', 8)))
end

fake('mcp-auth-sidecar 9.9.9 (protocol 2)')
text, errors, warnings = checkhealth('protocol 2')
check('mismatch: still the bundled binary', text:find('found: ' .. bundled .. ' (bundled with the plugin)', 1, true) ~= nil, text)
check(
  'mismatch: one WARNING, naming both protocol versions',
  #warnings == 1
    and warnings[1]:find('protocol version mismatch: the binary speaks protocol 2, the plugin protocol 1', 1, true) ~= nil,
  warnings
)
check('mismatch: advises the build step', text:find('build.sh', 1, true) ~= nil, text)
check('mismatch: no ERROR', #errors == 0, errors)

fake('mcp-auth-sidecar 0.0.9')
text, errors, warnings = checkhealth('no protocol')
check(
  'no protocol in --version: one WARNING',
  #warnings == 1 and warnings[1]:find('reports no protocol version', 1, true) ~= nil,
  warnings
)
check('no protocol in --version: no ERROR', #errors == 0, errors)

-- Nothing bundled: $PATH (here the decoy, which reports protocol 1).
assert(vim.uv.fs_unlink(bundled))
text, errors, warnings = checkhealth('PATH')
check('no bundled binary: found on $PATH', text:find('found: ' .. DECOY .. ' (on $PATH)', 1, true) ~= nil, text)
check('no bundled binary: says where the build step would put it', text:find('no bundled binary at ' .. bundled, 1, true) ~= nil, text)
check('no bundled binary: no WARNING or ERROR', #warnings == 0 and #errors == 0, { warnings, errors })

-- setup({ cmd }) wins over a bundled binary.
assert(vim.uv.fs_rename(real_path, bundled))
local other = vim.fn.tempname() .. '-mcp-auth-sidecar'
assert(vim.uv.fs_symlink(bundled, other))
require('mcp_auth').setup({
  cmd = { other },
  servers = { ['local'] = { url = URL } },
  storage = 'memory',
  browser = 'none',
  discover_config_files = false,
})
text, errors, warnings = checkhealth('setup cmd')
check('setup cmd: found it, from setup', text:find('found: ' .. other .. ' (from setup({ cmd }))', 1, true) ~= nil, text)
check(
  'setup cmd: says the bundled binary is not used',
  text:find('setup({ cmd }) is used instead of the bundled binary at ' .. bundled, 1, true) ~= nil,
  text
)
check('setup cmd: the sidecar runs', require('mcp_auth.sidecar').phase() == 'running')
check('setup cmd: no WARNING or ERROR', #warnings == 0 and #errors == 0, { warnings, errors })

pcall(function()
  require('mcp_auth').stop()
end)
vim.cmd(harness.summary() and 'qall!' or 'cquit! 1')
