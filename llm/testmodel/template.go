package testmodel

// Chat templates. llama.cpp does not run Jinja for llama_chat_apply_template: it detects the template
// by substring (tiny-models.md §2.2). Ollama, importing a GGUF, picks its own Go template by edit
// distance to the Jinja templates of real models. So the chatml and gemma templates below are
// verbatim copies of real ones (Qwen's chatml and Gemma 3's, as listed in Ollama's
// template/index.json), and the SmolVLM one is a short Jinja template that renders exactly what
// llama.cpp's built-in SmolVLM formatter produces. As in real tokenizer configs, newlines inside
// Jinja string literals are literal newline characters.
const (
	// chatmlTemplate is detected as "chatml" by llama.cpp (it contains <|im_start|>) and as
	// "chatml" by Ollama.
	chatmlTemplate = `{% for message in messages %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}`

	// smolvlmTemplate is detected as "smolvlm" (<|im_start|> and <end_of_utterance>); a system
	// message is a bare paragraph.
	smolvlmTemplate = `<|im_start|>{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '

' }}{% else %}{{ message['role'] | capitalize }}: {{ message['content'] + '<end_of_utterance>
' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}`

	// gemmaTemplate is Gemma 3's template: detected as "gemma" by llama.cpp (<start_of_turn>) and as
	// "gemma3-instruct" by Ollama. It folds a system message into the first user turn. BOS comes
	// from add_bos_token when llama.cpp tokenizes and from bos_token when Jinja renders it.
	gemmaTemplate = `{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '

' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '

' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '
' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>
' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model
'}}
{%- endif -%}
`
)
