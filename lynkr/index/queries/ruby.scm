; lynkr tag query for Ruby.
(class name: (constant) @name.definition.class) @definition.class
(class name: (scope_resolution name: (constant) @name.definition.class)) @definition.class
(module name: (constant) @name.definition.module) @definition.module
(module name: (scope_resolution name: (constant) @name.definition.module)) @definition.module
(method name: (_) @name.definition.method) @definition.method
(singleton_method name: (_) @name.definition.method) @definition.method
(assignment left: (constant) @name.definition.constant) @definition.constant
(superclass (constant) @name.reference.class)
(call method: (identifier) @name.reference.call)
(call receiver: (constant) @name.reference.class)
(call method: (identifier) @_require (#any-of? @_require "require" "require_relative") arguments: (argument_list (string (string_content) @import.module)))
