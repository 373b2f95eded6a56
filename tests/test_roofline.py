from bench.roofline import bert_config, matmul_flops, shapes


def test_matmul_flops_of_a_tiny_bert_counted_by_hand():
    # 1 layer, hidden 4, intermediate 8, 2 heads (head size 2), batch 1 x length 2 (2 tokens), 2 labels:
    # q, k, v, output 4 x (2*2*4*4) = 256; feed-forward 2 x (2*2*4*8) = 256; scores and weighting per head
    # 2 heads x 2 x (2*2*2*2) = 64; pooler 2*1*4*4 = 32; classifier 2*1*4*2 = 16. Forward 624; training 3x.
    config = {"num_hidden_layers": 1, "hidden_size": 4, "intermediate_size": 8, "num_attention_heads": 2}
    assert matmul_flops(config, length=2, batch=1, train=False) == 624
    assert matmul_flops(config, length=2, batch=1) == 3 * 624


def test_matmul_flops_of_minilm_at_batch_32_by_16():
    # 6 layers of 512 tokens: 4 x 2*512*384*384 + 2 x 2*512*384*1536 + 12 heads x 32 rows x 2 x 2*16*32*16
    # = 1,824,522,240; pooler 9,437,184 and classifier 49,152: 10,956,619,776 forward.
    config = bert_config()
    assert config == {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12}
    assert matmul_flops(config, length=16, batch=32, train=False) == 10_956_619_776
    assert matmul_flops(config, length=16, batch=32) == 32_869_859_328


def test_the_roofline_times_forward_and_both_gradient_products_of_each_weight():
    assert set(shapes(512)) == {(512, 384, 384), (384, 512, 384), (512, 384, 1536), (512, 1536, 384),
                                (384, 512, 1536), (1536, 512, 384)}
