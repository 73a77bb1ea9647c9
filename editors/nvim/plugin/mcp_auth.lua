-- mcp_auth: OAuth for remote MCP servers through mcp-auth-sidecar.
-- Defines :McpAuth and the highlight groups; everything else loads on use.
if vim.g.loaded_mcp_auth then
  return
end
vim.g.loaded_mcp_auth = true

if vim.fn.has('nvim-0.10') ~= 1 then
  vim.notify('mcp_auth needs Neovim >= 0.10', vim.log.levels.ERROR)
  return
end

require('mcp_auth.highlights').setup()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('mcp_auth_highlights', { clear = true }),
  callback = function()
    require('mcp_auth.highlights').setup()
  end,
})

vim.api.nvim_create_user_command('McpAuth', function(args)
  require('mcp_auth.commands').run(args)
end, {
  nargs = '*',
  bang = true,
  desc = 'mcp-auth-sidecar: status | authorize | logout | paste | cancel | copy | log',
  complete = function(arglead, cmdline, cursorpos)
    return require('mcp_auth.commands').complete(arglead, cmdline, cursorpos)
  end,
})
