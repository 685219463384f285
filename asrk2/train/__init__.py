"""asrk2.train"""
