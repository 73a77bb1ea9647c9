--- A ready lualine component:
---   require('lualine').setup({ sections = { lualine_x = { require('mcp_auth.lualine') } } })
--- Text from require('mcp_auth').statusline() (the cache, never a request),
--- colored with McpAuthOk / McpAuthWarn / McpAuthError / McpAuthInfo, hidden
--- while empty (no server configured). Its first render starts the sidecar
--- (autostart = "statusline", the default).
return {
  function()
    return require('mcp_auth').statusline()
  end,
  cond = function()
    return require('mcp_auth').statusline() ~= ''
  end,
  color = function()
    return require('mcp_auth').highlight()
  end,
}
