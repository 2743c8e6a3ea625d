; lynkr tag query for Kotlin.  The interface pattern comes first: it wins over the class pattern.
(class_declaration "interface" (type_identifier) @name.definition.interface) @definition.interface
(class_declaration (type_identifier) @name.definition.class) @definition.class
(object_declaration (type_identifier) @name.definition.class) @definition.class
(function_declaration (simple_identifier) @name.definition.function) @definition.function
(call_expression (simple_identifier) @name.reference.call)
(call_expression (navigation_expression (navigation_suffix (simple_identifier) @name.reference.call)))
(delegation_specifier (user_type (type_identifier) @name.reference.class))
(delegation_specifier (constructor_invocation (user_type (type_identifier) @name.reference.class)))
(import_header (identifier) @import.module)
