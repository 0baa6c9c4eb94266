package testmodel

// Chat templates. llama.cpp does not run Jinja for llama_chat_apply_template: it detects the template
// by substring (tiny-models.md §2.2). These short templates contain the markers it looks for and are
// also valid Jinja for tools that do render them; inside Jinja string literals a newline is written
// as the escape \n, as in the templates of real models.
const (
	// chatmlTemplate is detected as "chatml" (contains <|im_start|>).
	chatmlTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

	// smolvlmTemplate is detected as "smolvlm" (<|im_start|> and <end_of_utterance>). Rendered as
	// Jinja it gives what llama.cpp's built-in SmolVLM formatter gives (a system message is a bare
	// paragraph).
	smolvlmTemplate = "<|im_start|>{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
		"{% else %}{{ message['role'] | capitalize }}: {{ message['content'] + '<end_of_utterance>\\n' }}{% endif %}{% endfor %}" +
		"{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"

	// gemmaTemplate is detected as "gemma" (<start_of_turn>). Like Gemma 3's own template it folds a
	// system message into the first user turn and calls the assistant "model"; BOS comes from
	// add_bos_token when llama.cpp tokenizes, and from bos_token when a Jinja engine renders it.
	gemmaTemplate = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}" +
		"{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}" +
		"{% for message in loop_messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
		"{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
