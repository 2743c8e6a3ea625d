; lynkr tag query for Rust.  An impl block is a scope, so its functions are methods of the type.
(struct_item name: (type_identifier) @name.definition.struct) @definition.struct
(union_item name: (type_identifier) @name.definition.struct) @definition.struct
(enum_item name: (type_identifier) @name.definition.enum) @definition.enum
(type_item name: (type_identifier) @name.definition.type) @definition.type
(trait_item name: (type_identifier) @name.definition.trait) @definition.trait
(function_item name: (identifier) @name.definition.function) @definition.function
(function_signature_item name: (identifier) @name.definition.function) @definition.function
(mod_item name: (identifier) @name.definition.module) @definition.module
(macro_definition name: (identifier) @name.definition.macro) @definition.macro
(const_item name: (identifier) @name.definition.constant) @definition.constant
(static_item name: (identifier) @name.definition.constant) @definition.constant
(impl_item type: (type_identifier) @name.scope) @scope
(impl_item type: (generic_type type: (type_identifier) @name.scope)) @scope
(impl_item trait: (type_identifier) @name.reference.implementation)
(call_expression function: (identifier) @name.reference.call)
(call_expression function: (field_expression field: (field_identifier) @name.reference.call))
(call_expression function: (scoped_identifier name: (identifier) @name.reference.call))
(macro_invocation macro: (identifier) @name.reference.macro)
(type_identifier) @name.reference.type
(use_declaration argument: (_) @import.module)
