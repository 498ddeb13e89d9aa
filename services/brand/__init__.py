"""Brand (总部统一设计模板 门店个性化内容填充): HQ's page templates, stores' content in them, the resolved page."""
