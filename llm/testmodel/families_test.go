package testmodel

// familyWant is what llama.cpp must report for each family's tiny model (tiny-models.md §2.2, §6, §9).
type familyWant struct {
	family   string
	arch     string
	ropeType int // llama_model_rope_type: 0 NORM, 2 NEOX, 8 MROPE
	// chat is llama_chat_apply_template's output for chatMessages with add_ass.
	chat string
	// multiTurn is the output for multiTurnMessages; the same as the Jinja render of the template
	// (checked with Python's jinja2 when the templates were written).
	multiTurn string
	eog       []string // tokens that must end generation

	// MultimodalTokenize of TestImage(40, 30): embedding rows, and the text tokens of the first and
	// last text chunks (the family's image begin/end markers).
	imageRows             int
	imageFirst, imageLast []string

	// mtmd_tokenize of the chat prompt with the image: image chunks (tiles) and the positions the
	// image takes (M-RoPE: max(nx, ny) instead of the token count).
	imageChunks, imagePos int
	mrope, nonCausal      bool
}

var familyWants = []familyWant{
	{
		family: "llava", arch: "llama", ropeType: 0,
		chat:      "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n",
		multiTurn: "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\nIt is red.<|im_end|>\n<|im_start|>user\nVote.<|im_end|>\n<|im_start|>assistant\n",
		eog:       []string{"<|im_end|>", "<|endoftext|>"},
		imageRows: 16, imageChunks: 1, imagePos: 16,
	},
	{
		family: "qwen2vl", arch: "qwen2vl", ropeType: 8,
		chat:      "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n",
		multiTurn: "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\nIt is red.<|im_end|>\n<|im_start|>user\nVote.<|im_end|>\n<|im_start|>assistant\n",
		eog:       []string{"<|im_end|>", "<|endoftext|>"},
		imageRows: 12, imageFirst: []string{"<|vision_start|>"}, imageLast: []string{"<|vision_end|>"},
		imageChunks: 1, imagePos: 4, mrope: true,
	},
	{
		family: "gemma3", arch: "gemma3", ropeType: 2,
		chat:      "<start_of_turn>user\nYou are a spy.\n\n<__media__>\nDescribe the image.<end_of_turn>\n<start_of_turn>model\n",
		multiTurn: "<start_of_turn>user\nYou are a spy.\n\n<__media__>\nDescribe the image.<end_of_turn>\n<start_of_turn>model\nIt is red.<end_of_turn>\n<start_of_turn>user\nVote.<end_of_turn>\n<start_of_turn>model\n",
		eog:       []string{"<end_of_turn>", "<eos>"},
		imageRows: 4, imageFirst: []string{"<bos>", "<start_of_image>"}, imageLast: []string{"<end_of_image>"},
		imageChunks: 1, imagePos: 4, nonCausal: true,
	},
	{
		family: "smolvlm", arch: "llama", ropeType: 0,
		chat:      "<|im_start|>You are a spy.\n\nUser: <__media__>\nDescribe the image.<end_of_utterance>\nAssistant:",
		multiTurn: "<|im_start|>You are a spy.\n\nUser: <__media__>\nDescribe the image.<end_of_utterance>\nAssistant: It is red.<end_of_utterance>\nUser: Vote.<end_of_utterance>\nAssistant:",
		eog:       []string{"<end_of_utterance>", "<|endoftext|>"},
		imageRows: 20, imageFirst: []string{"<fake_token_around_image>", "<row_1_col_1>"}, imageLast: []string{"<fake_token_around_image>"},
		imageChunks: 5, imagePos: 20,
	},
	{
		family: "internvl", arch: "qwen2", ropeType: 2,
		chat:      "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n",
		multiTurn: "<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n<__media__>\nDescribe the image.<|im_end|>\n<|im_start|>assistant\nIt is red.<|im_end|>\n<|im_start|>user\nVote.<|im_end|>\n<|im_start|>assistant\n",
		eog:       []string{"<|im_end|>", "<|endoftext|>"},
		imageRows: 4, imageFirst: []string{"<img>"}, imageLast: []string{"</img>"},
		imageChunks: 1, imagePos: 4,
	},
}
