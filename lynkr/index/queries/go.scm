; lynkr tag query for Go.
(function_declaration name: (identifier) @name.definition.function) @definition.function
(method_declaration receiver: (parameter_list (parameter_declaration type: (pointer_type (type_identifier) @definition.scope))) name: (field_identifier) @name.definition.method) @definition.method
(method_declaration receiver: (parameter_list (parameter_declaration type: (type_identifier) @definition.scope)) name: (field_identifier) @name.definition.method) @definition.method
(method_declaration name: (field_identifier) @name.definition.method) @definition.method
(type_declaration (type_spec name: (type_identifier) @name.definition.struct type: (struct_type))) @definition.struct
(type_declaration (type_spec name: (type_identifier) @name.definition.interface type: (interface_type))) @definition.interface
(type_declaration (type_spec name: (type_identifier) @name.definition.type type: [(type_identifier) (qualified_type) (map_type) (slice_type) (function_type) (pointer_type) (array_type) (channel_type) (generic_type)])) @definition.type
(const_spec name: (identifier) @name.definition.constant) @definition.constant
(method_elem name: (field_identifier) @name.definition.method) @definition.method
(call_expression function: (identifier) @name.reference.call)
(call_expression function: (selector_expression field: (field_identifier) @name.reference.call))
(type_identifier) @name.reference.type
(import_spec path: (interpreted_string_literal) @import.module)
