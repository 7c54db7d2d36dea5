"""The loader: a code location target (file, module or package) -> RepositoryDefinition.

`load.load_repository` imports the target and resolves what it defines;
`import_recorder` times the imports, so the host can say which module was
slow or hung (the server shares that progress with its supervisor through
runtime.protocol.load_status). The loader depends on the definitions only.
"""
